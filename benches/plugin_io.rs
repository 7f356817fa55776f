//! Samples per second through the MedMNIST dataset plugin (sandboxed wasm, host copies and
//! validation included) next to reading the same arrays natively with the same crates, at
//! batch 64, for 28×28 grey and 224×224×3 images.
//!
//! Run: `cargo bench --bench plugin_io`. After the criterion groups it prints, for each
//! shape, the median time per batch of both paths measured interleaved in the same run and
//! their ratio (plugin / native).

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use mvb::data::{ImageRef, Pixels, Sample, Split};
use mvb::plugin::{Builtin, Dataset, HostConfig, PluginHost};
use npyz::WriterBuilder;

const BATCH: u32 = 64;

// The allocator of the `mvb` binary, so that both paths allocate as they do for users.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A dataset read natively: the arrays decompressed once (as the plugin does in `open`),
/// batches copied out into the kernel's sample type.
struct Native {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    shape: [u32; 3],
}

impl Native {
    fn open(file: &Path, split: &str) -> Native {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(file).expect("npz")).expect("zip");
        let mut read = |entry: &str| {
            let mut bytes = Vec::new();
            zip.by_name(entry).expect("entry").read_to_end(&mut bytes).expect("read");
            let npy = npyz::NpyFile::new(&bytes[..]).expect("npy");
            let shape = npy.shape().to_vec();
            (shape, npy.into_vec::<u8>().expect("u8"))
        };
        let (shape, pixels) = read(&format!("{split}_images.npy"));
        let (_, labels) = read(&format!("{split}_labels.npy"));
        let channels = shape.get(3).copied().unwrap_or(1);
        Native { pixels, labels, shape: [shape[1] as u32, shape[2] as u32, channels as u32] }
    }

    fn len(&self) -> u64 {
        self.labels.len() as u64
    }

    fn samples(&self, split: Split, start: u64, count: u32) -> Vec<Sample> {
        let [h, w, c] = self.shape;
        let per = (h * w * c) as usize;
        let end = (start + u64::from(count)).min(self.len()) as usize;
        (start as usize..end)
            .map(|i| Sample {
                id: format!("{split}-{i}"),
                image: Some(ImageRef::Raw(Pixels {
                    width: w,
                    height: h,
                    channels: c as u8,
                    data: self.pixels[i * per..(i + 1) * per].to_vec(),
                })),
                labels: vec![u32::from(self.labels[i])],
                qa: None,
                attributes: Vec::new(),
            })
            .collect()
    }
}

/// Writes a MedMNIST-layout file of `n` test images of 224×224×3 (a smooth pattern, so that it
/// compresses like real images rather than noise).
fn write_224(dir: &Path, n: u64) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(dir.join("synthetic_224.npz")).expect("create"));
    let opts = zip::write::SimpleFileOptions::default();
    let mut array = |name: &str, shape: &[u64], data: &mut dyn Iterator<Item = u8>| {
        let mut bytes = Vec::new();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(shape).writer(&mut bytes).begin_nd().expect("npy");
        w.extend(data).expect("write");
        w.finish().expect("finish");
        zip.start_file(name, opts).expect("entry");
        zip.write_all(&bytes).expect("write");
    };
    let size = 224 * 224 * 3;
    array(
        "test_images.npy",
        &[n, 224, 224, 3],
        &mut (0..n * size).map(|i| ((i % size) / 3 % 251) as u8 ^ (i / size) as u8),
    );
    array("test_labels.npy", &[n, 1], &mut (0..n).map(|i| (i % 2) as u8));
    zip.finish().expect("finish");
}

struct Case {
    label: &'static str,
    plugin: Dataset,
    native: Native,
    split: Split,
}

fn cases(host: &PluginHost, tmp: &Path) -> Vec<Case> {
    let builtin = Builtin::find("medmnist").expect("built in");
    let vendored = builtin.default_data_dir().expect("vendored data");
    write_224(tmp, 256);
    let open = |dir: &Path, name: &str| {
        host.dataset(&builtin.source(), Some(dir)).expect("starts").into_dataset(name).expect("opens")
    };
    vec![
        Case {
            label: "28x28x1",
            plugin: open(&vendored, "pneumoniamnist"),
            native: Native::open(&vendored.join("pneumoniamnist.npz"), "train"),
            split: Split::Train,
        },
        Case {
            label: "224x224x3",
            plugin: open(tmp, "synthetic_224"),
            native: Native::open(&tmp.join("synthetic_224.npz"), "test"),
            split: Split::Test,
        },
    ]
}

fn starts(len: u64) -> impl Iterator<Item = u64> {
    (0..).map(move |k: u64| (k * u64::from(BATCH)) % (len - u64::from(BATCH)))
}

fn main() {
    let host = PluginHost::new(HostConfig::with_default_cache()).expect("host");
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut cases = cases(&host, tmp.path());
    let mut criterion = Criterion::default().configure_from_args().warm_up_time(Duration::from_secs(1));
    for case in &mut cases {
        let mut group = criterion.benchmark_group(format!("dataset_read/{}/batch{BATCH}", case.label));
        group.throughput(Throughput::Elements(u64::from(BATCH)));
        let len = case.native.len();
        let mut at = starts(len);
        group.bench_function("plugin", |b| {
            b.iter(|| black_box(case.plugin.samples(case.split, at.next().unwrap_or(0), BATCH).expect("batch")))
        });
        let mut at = starts(len);
        group.bench_function("native", |b| {
            b.iter(|| black_box(case.native.samples(case.split, at.next().unwrap_or(0), BATCH)))
        });
        group.finish();
    }
    criterion.final_summary();

    println!("\nsame-run comparison, batch {BATCH}, median of 200 interleaved batches:");
    println!("{:<10} {:>14} {:>14} {:>16} {:>8}", "images", "plugin", "native", "plugin samples/s", "ratio");
    for case in &mut cases {
        let len = case.native.len();
        let (mut plugin, mut native) = (Vec::new(), Vec::new());
        for start in starts(len).take(200) {
            let t = Instant::now();
            black_box(case.plugin.samples(case.split, start, BATCH).expect("batch"));
            plugin.push(t.elapsed());
            let t = Instant::now();
            black_box(case.native.samples(case.split, start, BATCH));
            native.push(t.elapsed());
        }
        let (p, n) = (median(&mut plugin), median(&mut native));
        println!(
            "{:<10} {:>12.1}µs {:>12.1}µs {:>16.0} {:>7.2}x",
            case.label,
            p.as_secs_f64() * 1e6,
            n.as_secs_f64() * 1e6,
            f64::from(BATCH) / p.as_secs_f64(),
            p.as_secs_f64() / n.as_secs_f64()
        );
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}
