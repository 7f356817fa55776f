//! PyTorch `.bin` checkpoints (torch.save zip archives, fixtures from
//! `tools/make_torch_bin_fixtures.py`): a `.bin`-only CLIP folder gives exactly the features of
//! its safetensors twin (library and `mvb zeroshot`); every layout torch writes (offsets,
//! transposed views, f16/bf16/f64, protocol 4, shards) reads back the values torch saved; a
//! pickle that calls `os.system` is refused and nothing runs; truncated, incomplete or
//! inconsistent archives and the legacy format give one clear error; random mutations never
//! panic.

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use mvb::backend::Device;
use mvb::data::{ImageRef, load_image};
use mvb::model::{ContrastiveModel, ModelError, Weights};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::Value;

use crate::common::{mvb, root};

const EMB: &str = "text_model.embeddings.token_embedding.weight";

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/torch-bin").join(name)
}

/// A folder holding `file` as `pytorch_model.bin`.
fn folder_with(bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("pytorch_model.bin"), bytes).expect("write");
    dir
}

fn open_bytes(bytes: &[u8]) -> Result<Weights, ModelError> {
    Weights::open(folder_with(bytes).path())
}

/// The token embedding the fixture stores as a strided view: row i = v[i..i + width].
fn embedding(rows: usize, width: usize) -> Vec<f32> {
    let v: Vec<f32> =
        (0..rows + width - 1).map(|k| (((k * 7919) % 1000) as f64 - 500.0) / 20000.0).map(|x| x as f32).collect();
    (0..rows).flat_map(|i| v[i..i + width].to_vec()).collect()
}

/// tiny-clip's folder with its weights as the `.bin` fixture (`bin`) or as safetensors with the
/// same token embedding (the twin).
fn clip_folder(bin: bool) -> tempfile::TempDir {
    let src = root().join("tests/fixtures/tiny-clip");
    let dir = tempfile::tempdir().expect("temp dir");
    let files = std::fs::read_dir(&src).expect("fixture").map(|e| e.expect("entry").path());
    for path in files.filter(|p| p.extension().is_none_or(|e| e != "safetensors")) {
        std::fs::copy(&path, dir.path().join(path.file_name().expect("name"))).expect("copy");
    }
    if bin {
        std::fs::copy(fixture("clip/pytorch_model.bin"), dir.path().join("pytorch_model.bin")).expect("copy");
        return dir;
    }
    let bytes = std::fs::read(src.join("model.safetensors")).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let shape = st.tensor(EMB).expect("embedding").shape().to_vec();
    let emb: Vec<u8> = embedding(shape[0], shape[1]).iter().flat_map(|x| x.to_le_bytes()).collect();
    let views = st.tensors().into_iter().map(|(name, view)| match name == EMB {
        true => (name, TensorView::new(Dtype::F32, shape.clone(), &emb).expect("view")),
        false => (name, view),
    });
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).expect("write");
    dir
}

#[test]
fn a_bin_clip_gives_the_features_of_its_safetensors_twin() {
    let (bin, twin) = (clip_folder(true), clip_folder(false));
    let (wb, wt) = (Weights::open(bin.path()).expect("bin"), Weights::open(twin.path()).expect("twin"));
    for name in
        [EMB, "vision_model.encoder.layers.0.mlp.fc1.weight", "vision_model.encoder.layers.0.self_attn.v_proj.weight"]
    {
        let shape = wt.shape(name).expect("shape").to_vec();
        assert_eq!(
            wb.tensor(name, &shape).expect("bin tensor"),
            wt.tensor(name, &shape).expect("twin tensor"),
            "{name}"
        );
    }
    let dev = Device::cpu();
    let (mb, mt) = (
        ContrastiveModel::load_dir(bin.path(), &dev).expect("bin loads"),
        ContrastiveModel::load_dir(twin.path(), &dev).expect("twin loads"),
    );
    let images: Vec<_> = ["images/pneumoniamnist_test_0001_label0.png", "images/retinamnist_test_0000_label2.png"]
        .iter()
        .map(|f| load_image(&ImageRef::Path((*f).into()), &root().join("tests/fixtures")).expect("png"))
        .collect();
    assert_eq!(mb.image_features(&images).expect("bin"), mt.image_features(&images).expect("twin"));
    let texts = ["a photo of pneumonia".to_owned(), "an x-ray, normal".to_owned()];
    assert_eq!(mb.text_features(&texts).expect("bin"), mt.text_features(&texts).expect("twin"));
    assert_eq!(mb.dtype(), "F32");
}

#[test]
fn mvb_zeroshot_runs_on_a_bin_folder() {
    let (bin, twin) = (clip_folder(true), clip_folder(false));
    let run = |dir: &Path| {
        let (ok, stdout, stderr) =
            mvb(&["zeroshot", "--model", dir.to_str().expect("utf-8"), "--dataset", "breastmnist", "--limit", "8"]);
        assert!(ok, "{stderr}");
        stdout.lines().filter(|l| !l.contains(&*dir.to_string_lossy())).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(run(bin.path()), run(twin.path()));
}

/// Every tensor of `small.json` read from `w` equals what torch saved.
fn check_small(w: &Weights) {
    let text = std::fs::read_to_string(fixture("small.json")).expect("small.json");
    let json: HashMap<String, Value> = serde_json::from_str(&text).expect("json");
    for (name, t) in &json {
        let shape: Vec<usize> =
            t["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().expect("dim") as usize).collect();
        assert_eq!(w.shape(name), Some(shape.as_slice()), "{name}");
        if t["dtype"] == "int64" {
            let err = w.tensor(name, &shape).expect_err("int64 is not a float tensor").to_string();
            assert!(err.contains("I64") && err.contains(name), "{err}");
            continue;
        }
        let got = w.tensor(name, &shape).expect("tensor");
        let want: Vec<f32> =
            t["data"].as_array().expect("data").iter().map(|v| v.as_f64().expect("number") as f32).collect();
        assert_eq!(got.data(), want.as_slice(), "{name}");
    }
}

#[test]
fn every_layout_torch_writes_reads_back() {
    for file in ["small.bin", "small_p4.bin"] {
        check_small(&open_bytes(&std::fs::read(fixture(file)).expect("fixture")).expect(file));
    }
    check_small(&Weights::open(&fixture("sharded")).expect("sharded"));
}

fn one_line_error(bytes: &[u8], wanted: &[&str]) -> String {
    let err = open_bytes(bytes).expect_err("must be refused").to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("pytorch_model.bin"), "names the file: {err}");
    for w in wanted {
        assert!(err.contains(w), "{w:?} in {err}");
    }
    err
}

#[test]
fn a_pickle_calling_os_system_is_refused_and_nothing_runs() {
    let marker = Path::new("/tmp/mvb-torch-bin-pwned");
    let _ = std::fs::remove_file(marker);
    one_line_error(
        &std::fs::read(fixture("hostile.bin")).expect("fixture"),
        &["posix.system", "GLOBAL", "nothing was executed"],
    );
    one_line_error(
        &std::fs::read(fixture("hostile_p4.bin")).expect("fixture"),
        &["posix.system", "nothing was executed"],
    );
    assert!(!marker.exists(), "the hostile pickle ran");
}

#[test]
fn the_legacy_format_is_refused() {
    one_line_error(&std::fs::read(fixture("legacy.bin")).expect("fixture"), &["legacy (pre-1.6, non-zip)"]);
}

/// The entries of a zip archive, in order.
fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).expect("entry");
            let mut data = Vec::new();
            f.read_to_end(&mut data).expect("read");
            (f.name().expect("name").into_owned(), data)
        })
        .collect()
}

/// A stored (uncompressed) zip of `entries`, as torch writes.
fn repack(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        w.start_file(name.as_str(), opts).expect("start");
        w.write_all(data).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

fn small() -> Vec<(String, Vec<u8>)> {
    entries(&std::fs::read(fixture("small.bin")).expect("fixture"))
}

#[test]
fn damaged_archives_give_one_clear_error() {
    let bytes = std::fs::read(fixture("small.bin")).expect("fixture");
    one_line_error(&bytes[..bytes.len() / 2], &["not a readable zip archive"]);
    assert!(open_bytes(&repack(&small())).is_ok(), "repacking alone keeps it valid");
    let missing: Vec<_> = small().into_iter().filter(|(n, _)| n != "small/data/0").collect();
    one_line_error(&repack(&missing), &["storage `small/data/0` is missing"]);
    let mut short = small();
    short.iter_mut().filter(|(n, _)| n == "small/data/0").for_each(|(_, d)| d.truncate(d.len() - 4));
    one_line_error(&repack(&short), &["storage `small/data/0` holds 44 bytes", "12 elements of F32"]);
    let mut no_pickle = small();
    no_pickle.retain(|(n, _)| n != "small/data.pkl");
    one_line_error(&repack(&no_pickle), &["without `<name>/data.pkl`"]);
}

/// Reads every tensor of `small.json`'s names, whatever happens.
fn read_all(bytes: &[u8]) {
    if let Ok(w) = open_bytes(bytes) {
        for name in ["offset", "transposed", "half", "bf16", "double", "ids", "scalar", "empty", "param"] {
            if let Some(shape) = w.shape(name).map(<[usize]>::to_vec) {
                let _ = w.tensor(name, &shape);
            }
        }
    }
}

/// Random byte mutations, of the whole file and (re-packed with a valid CRC) of the pickle
/// alone, never panic: every outcome is a tensor or an error.
#[test]
fn random_mutations_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let file = std::fs::read(fixture("small.bin")).expect("fixture");
    let parts = small();
    let pkl = parts.iter().position(|(n, _)| n == "small/data.pkl").expect("data.pkl");
    for round in 0..300 {
        let whole = round % 3 == 0;
        let mut bytes = if whole { file.clone() } else { parts[pkl].1.clone() };
        for _ in 0..1 + rng.next_u32() % 4 {
            let at = rng.next_u32() as usize % bytes.len();
            bytes[at] = match rng.next_u32() % 4 {
                0 => bytes[at].wrapping_add(1),
                1 => 0xff,
                _ => rng.next_u32() as u8,
            };
        }
        if rng.next_u32() % 8 == 0 {
            bytes.truncate(rng.next_u32() as usize % bytes.len());
        }
        if whole {
            read_all(&bytes);
        } else {
            let mut packed = parts.clone();
            packed[pkl].1 = bytes;
            read_all(&repack(&packed));
        }
    }
}
