//! GGUF reader tests: the synthetic fixture (every metadata type, every tensor type, dequantisation
//! to 0 ulp against the python `gguf` package), the real SmolLM2 file, and hostile inputs.

use super::{expected, fixture, smollm2};
use mvb::model::gguf::{GgufError, GgufFile, LlamaParams, Value, gguf_to_hf_name, hf_to_gguf_name, qk_unpermute_rows};

fn bits_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().expect("test input").iter().map(|b| b.as_u64().expect("test input") as u32).collect()
}

#[test]
fn synthetic_metadata_every_type() {
    let f = GgufFile::open(fixture("synthetic.gguf")).expect("test input");
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    assert_eq!(f.metadata("test.u8"), Some(&Value::U8(200)));
    assert_eq!(f.metadata("test.i8"), Some(&Value::I8(-100)));
    assert_eq!(f.metadata("test.u16"), Some(&Value::U16(60000)));
    assert_eq!(f.metadata("test.i16"), Some(&Value::I16(-30000)));
    assert_eq!(f.get_u32("test.u32").expect("test input"), 4_000_000_000);
    assert_eq!(f.metadata("test.i32"), Some(&Value::I32(-2_000_000_000)));
    assert_eq!(f.get_f32("test.f32").expect("test input"), 1.5);
    assert_eq!(f.get_usize("test.u64").expect("test input"), 1 << 60);
    assert_eq!(f.metadata("test.i64"), Some(&Value::I64(-(1 << 60))));
    assert_eq!(f.get_f32("test.f64").expect("test input"), 2.25);
    assert!(f.get_bool("test.bool").expect("test input"));
    assert_eq!(f.get_str("test.str").expect("test input"), "héllo");
    assert_eq!(f.get_str_array("test.arr_str").expect("test input"), ["a", "", "<|im_start|>"]);
    assert_eq!(f.get_i32_array("test.arr_i32").expect("test input"), [1, -2, 3]);
    assert_eq!(f.get_str("general.architecture").expect("test input"), "llama");
    // Typed getters name the key and the mismatch.
    let e = f.get_u32("test.i32").unwrap_err().to_string();
    assert!(e.contains("test.i32") && e.contains("expected u32"), "{e}");
    assert!(matches!(f.get_u32("nope"), Err(GgufError::MissingKey { .. })));
}

#[test]
fn synthetic_dequantisation_matches_python_gguf_to_the_bit() {
    let exp = expected();
    let f = GgufFile::open(fixture("synthetic.gguf")).expect("test input");
    let synth = exp["synthetic"].as_object().expect("test input");
    assert_eq!(synth.len(), 9);
    for (name, e) in synth {
        let t = f.tensor(name).unwrap_or_else(|| panic!("{name} listed"));
        let ty = t.ty().expect("test input");
        assert_eq!(format!("{ty:?}"), e["type"].as_str().expect("test input"), "{name}");
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .expect("test input")
            .iter()
            .map(|d| d.as_u64().expect("test input") as usize)
            .collect();
        assert_eq!(t.shape, shape, "{name}: shape in PyTorch order");
        let (s, values) = f.tensor_f32(name).expect("test input");
        assert_eq!(s, shape);
        let got: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        assert_eq!(got, bits_of(&e["bits"]), "{name}: dequantised values differ from gguf-py");
        if shape.len() == 2 {
            let m = f.matrix(name).expect("test input");
            assert_eq!((m.rows(), m.cols(), m.ty()), (shape[0], shape[1], ty));
            assert_eq!(m.dequantize().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), got, "{name}");
        }
    }
    assert!(f.matrix("t.vec").is_err(), "a 1-D tensor is not a matrix");
}

#[test]
fn real_smollm2_dequantisation_and_params() {
    let Some(path) = smollm2("real_smollm2_dequantisation_and_params") else { return };
    let f = GgufFile::open(&path).expect("test input");
    assert_eq!(f.tensors().len(), 272);
    for (name, e) in expected()["real"].as_object().expect("test input") {
        let (shape, v) = f.tensor_f32(name).expect("test input");
        let want: Vec<usize> = e["shape"]
            .as_array()
            .expect("test input")
            .iter()
            .map(|d| d.as_u64().expect("test input") as usize)
            .collect();
        assert_eq!(shape, want, "{name}");
        assert_eq!(
            format!("{:?}", f.tensor(name).expect("test input").ty().expect("test input")),
            e["type"].as_str().expect("test input")
        );
        let sum = v
            .iter()
            .enumerate()
            .fold(0u64, |a, (i, x)| a.wrapping_add((x.to_bits() as u64).wrapping_mul(i as u64 + 1)));
        assert_eq!(
            sum.to_string(),
            e["checksum"].as_str().expect("test input"),
            "{name}: checksum of dequantised bits"
        );
        let idx =
            e["sample_index"].as_array().expect("test input").iter().map(|i| i.as_u64().expect("test input") as usize);
        let got: Vec<u32> = idx.map(|i| v[i].to_bits()).collect();
        assert_eq!(got, bits_of(&e["sample_bits"]), "{name}");
    }
    let p = LlamaParams::from_gguf(&f).expect("test input");
    assert_eq!(p.arch, "llama");
    assert_eq!((p.vocab_size, p.hidden_size, p.num_layers), (49152, 576, 30));
    assert_eq!((p.num_heads, p.num_kv_heads, p.head_dim, p.intermediate_size), (9, 3, 64, 1536));
    assert_eq!((p.rms_norm_eps, p.rope_theta, p.rope_dim, p.context_length), (1e-5, 100000.0, 64, 8192));
    assert!(p.tied_embeddings && !p.qkv_bias && p.rope_scaling.is_none());
    assert_eq!(
        (p.bos_token_id, p.eos_token_id, p.pad_token_id, p.add_bos_token),
        (Some(1), Some(2), Some(2), Some(false))
    );
    assert!(p.chat_template.as_deref().expect("test input").contains("<|im_start|>"));
    // Every tensor maps to a Hugging Face name and back.
    for t in f.tensors() {
        let hf = gguf_to_hf_name(&t.name).unwrap_or_else(|| panic!("{} has no HF name", t.name));
        assert_eq!(hf_to_gguf_name(&hf).as_deref(), Some(t.name.as_str()));
    }
    assert_eq!(gguf_to_hf_name("blk.7.attn_q.weight").expect("test input"), "model.layers.7.self_attn.q_proj.weight");
    assert_eq!(gguf_to_hf_name("token_embd.weight").expect("test input"), "model.embed_tokens.weight");
    // Un-permuting K moves whole quantised rows: row k of the result is row perm[k].
    let k = f.matrix("blk.0.attn_k.weight").expect("test input");
    let perm = qk_unpermute_rows(k.rows(), p.num_kv_heads).expect("test input");
    let (dk, dp) = (k.dequantize(), k.permute_rows(&perm).expect("test input").dequantize());
    for (i, &src) in perm.iter().enumerate() {
        assert_eq!(dp[i * 576..(i + 1) * 576], dk[src * 576..(src + 1) * 576]);
    }
    // The HF-named accessors apply it (q with 9 heads, k with 3) and leave other tensors alone.
    for (hf, heads) in [("model.layers.0.self_attn.q_proj.weight", 9), ("model.layers.0.self_attn.k_proj.weight", 3)] {
        let g = f.tensor_f32(&hf_to_gguf_name(hf).expect("test input")).expect("test input").1;
        let (shape, h) = f.hf_tensor_f32(hf, &p).expect("test input");
        let perm = qk_unpermute_rows(shape[0], heads).expect("test input");
        for (i, &src) in perm.iter().enumerate() {
            assert_eq!(h[i * 576..(i + 1) * 576], g[src * 576..(src + 1) * 576], "{hf}");
        }
        assert_eq!(f.hf_matrix(hf, &p).expect("test input").dequantize(), h, "{hf}");
    }
    let v = "model.layers.0.self_attn.v_proj.weight";
    assert_eq!(
        f.hf_tensor_f32(v, &p).expect("test input").1,
        f.tensor_f32("blk.0.attn_v.weight").expect("test input").1
    );
    assert!(f.hf_matrix("lm_head.weight", &p).unwrap_err().to_string().contains("output.weight"), "tied");
}

#[test]
fn qk_unpermute_inverts_the_converter_permutation() {
    // llama.cpp's converter: rows reshaped (heads, 2, hd/2) then axes 1 and 2 swapped.
    let (heads, hd) = (3, 8);
    let rows = heads * hd;
    let mut forward = vec![0; rows]; // forward[gguf_row] = hf_row
    for h in 0..heads {
        for i in 0..hd / 2 {
            for a in 0..2 {
                forward[h * hd + i * 2 + a] = h * hd + a * hd / 2 + i;
            }
        }
    }
    let perm = qk_unpermute_rows(rows, heads).expect("test input");
    for (hf_row, &gguf_row) in perm.iter().enumerate() {
        assert_eq!(forward[gguf_row], hf_row);
    }
    assert!(qk_unpermute_rows(10, 3).is_none());
}

/// Builds a GGUF file in memory: one F32 tensor `w` of `ne`, with the given type id and offset.
fn tiny_gguf(ne: &[u64], type_id: u32, offset: u64, data_len: usize) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(1u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // kv
    let s = |b: &mut Vec<u8>, t: &str| {
        b.extend((t.len() as u64).to_le_bytes());
        b.extend(t.as_bytes());
    };
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    s(&mut b, "llama");
    s(&mut b, "w");
    b.extend((ne.len() as u32).to_le_bytes());
    ne.iter().for_each(|d| b.extend(d.to_le_bytes()));
    b.extend(type_id.to_le_bytes());
    b.extend(offset.to_le_bytes());
    b.resize(b.len().div_ceil(32) * 32 + data_len, 0);
    b
}

fn open_bytes(bytes: &[u8], tag: &str) -> Result<GgufFile, GgufError> {
    let dir = std::env::temp_dir().join(format!("mvb-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("test input");
    let p = dir.join(format!("{tag}.gguf"));
    std::fs::write(&p, bytes).expect("test input");
    GgufFile::open(&p)
}

#[test]
fn hostile_inputs_give_one_clear_error_each() {
    let ok = tiny_gguf(&[4, 2], 0, 0, 32);
    let f = open_bytes(&ok, "ok").expect("test input");
    assert_eq!(f.tensor_f32("w").expect("test input").0, [2, 4]);

    let e = open_bytes(b"GGML\x03\0\0\0", "magic").unwrap_err();
    assert!(matches!(e, GgufError::BadMagic { .. }), "{e}");
    let mut v = ok.clone();
    v[4] = 9;
    assert!(matches!(open_bytes(&v, "version").unwrap_err(), GgufError::Version { version: 9, .. }));

    let e = open_bytes(&tiny_gguf(&[4, 2], 0, 64, 32), "offset").unwrap_err();
    assert!(e.to_string().contains("tensor w") && e.to_string().contains("past the end"), "{e}");
    let e = open_bytes(&tiny_gguf(&[4, 2], 0, 3, 32), "misaligned").unwrap_err();
    assert!(e.to_string().contains("alignment"), "{e}");
    let e = open_bytes(&tiny_gguf(&[u64::MAX / 2, 4], 0, 0, 32), "dims").unwrap_err();
    assert!(e.to_string().contains("tensor w") && e.to_string().contains("overflow"), "{e}");
    let e = open_bytes(&tiny_gguf(&[1 << 40, 1 << 40], 0, 0, 32), "dims2").unwrap_err();
    assert!(e.to_string().contains("tensor w"), "{e}");
    let e = open_bytes(&tiny_gguf(&[4, 2, 1, 1, 1], 0, 0, 32), "ndims").unwrap_err();
    assert!(e.to_string().contains("dimensions"), "{e}");

    // An unknown / unsupported type: listed, but refused with the tensor's name on access.
    let f = open_bytes(&tiny_gguf(&[32, 2], 99, 0, 64), "type").expect("test input");
    let e = f.matrix("w").unwrap_err().to_string();
    assert!(e.contains("tensor w") && e.contains("type 99"), "{e}");
    let f = open_bytes(&tiny_gguf(&[32, 2], 13, 0, 64), "q5k").expect("test input");
    assert!(f.tensor_f32("w").unwrap_err().to_string().contains("Q5_K"));

    // Every truncation of a valid file is an error, never a panic.
    let full = std::fs::read(fixture("synthetic.gguf")).expect("test input");
    let f = GgufFile::open(fixture("synthetic.gguf")).expect("test input");
    let data_end = f.tensors().iter().map(|t| t.range.clone().expect("test input").end).max().expect("test input");
    for cut in (0..data_end).step_by(97).chain([data_end - 1]) {
        let r = open_bytes(&full[..cut], "cut");
        assert!(r.is_err(), "truncated at {cut} bytes opened");
    }
    // Huge counts and lengths.
    let mut h = ok.clone();
    h[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // metadata count
    assert!(open_bytes(&h, "count").is_err());
    let mut h = ok.clone();
    h[24..32].copy_from_slice(&(u64::MAX - 3).to_le_bytes()); // first key length
    assert!(matches!(open_bytes(&h, "keylen").unwrap_err(), GgufError::Truncated { .. }));
}
