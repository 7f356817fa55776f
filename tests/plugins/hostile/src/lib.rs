//! A dataset plugin that misbehaves on purpose, for the kernel's sandbox tests.
//!
//! `catalog` lists `hostile`; `open("hostile")` gives a small valid diagnosis dataset (classes
//! `a` and `b`, an empty train and validation split, 8 test samples). Each `samples` call reads
//! `/data/mode` (trimmed) and acts on it:
//!
//! * `read-outside`: tries to read files outside the data folder. If any read succeeds, returns
//!   one sample whose id is the file's content (so a test can see the leak); otherwise fails
//!   with `io` and the first refusal's error.
//! * `socket:PORT`: tries to connect to 127.0.0.1:PORT; on success writes `leak` and returns an
//!   empty list, otherwise fails with `io`.
//! * `memory`: allocates 16 MiB chunks, filled and kept, until allocation fails (a trap).
//! * `loop`: spins forever (until the host's time budget interrupts it).
//! * `trap`: panics.
//! * `log-flood`: logs [`FLOOD_LINES`] info lines, each carrying an escape sequence and a
//!   right-to-left override, then returns valid samples.
//! * `ok`, anything else, or no `mode` file: returns valid samples.

use std::hint::black_box;
use std::io::Write;

wit_bindgen::generate!({ world: "dataset", path: "../../../wit" });

use exports::mvb::plugin::dataset_api::{Dataset, Guest, GuestDataset};
use mvb::plugin::host::{LogLevel, log};
use mvb::plugin::types::{DatasetInfo, Error, ErrorKind, Image, Modality, Pixels, Sample, Split, SplitSize, Task};

const NAME: &str = "hostile";
const TEST_SIZE: u64 = 8;
/// How many lines one `log-flood` call logs.
const FLOOD_LINES: u32 = 5000;

/// Paths that must all stay out of reach: a `..` escape from the preopen, absolute paths
/// outside it, and a relative `..` path.
const OUTSIDE: [&str; 4] = ["/data/../secret.txt", "/secret.txt", "/etc/passwd", "../secret.txt"];

fn error(kind: ErrorKind, message: impl Into<String>) -> Error {
    Error { kind, message: message.into() }
}

struct Component;

impl Guest for Component {
    type Dataset = Hostile;

    fn catalog() -> Result<Vec<String>, Error> {
        Ok(vec![NAME.to_string()])
    }

    fn open(name: String) -> Result<Dataset, Error> {
        if name != NAME {
            return Err(error(
                ErrorKind::InvalidArgument,
                format!("unknown dataset `{name}`; this plugin serves only `{NAME}`"),
            ));
        }
        Ok(Dataset::new(Hostile))
    }
}

struct Hostile;

impl GuestDataset for Hostile {
    fn info(&self) -> DatasetInfo {
        DatasetInfo {
            name: NAME.to_string(),
            description: "Test plugin that misbehaves as /data/mode says".to_string(),
            task: Task::Diagnosis,
            modality: Modality::Other,
            class_names: vec!["a".to_string(), "b".to_string()],
            multi_label: false,
            splits: vec![
                SplitSize { split: Split::Train, count: 0 },
                SplitSize { split: Split::Validation, count: 0 },
                SplitSize { split: Split::Test, count: TEST_SIZE },
            ],
            license: "CC0-1.0".to_string(),
            citation: String::new(),
        }
    }

    fn samples(&self, split: Split, start: u64, count: u32) -> Result<Vec<Sample>, Error> {
        let mode = std::fs::read_to_string("/data/mode").unwrap_or_default();
        let mode = mode.trim();
        log(LogLevel::Debug, &format!("hostile: mode `{mode}`"));
        if mode == "read-outside" {
            read_outside()
        } else if let Some(port) = mode.strip_prefix("socket:") {
            socket(port)
        } else if mode == "memory" {
            exhaust_memory()
        } else if mode == "loop" {
            spin()
        } else if mode == "trap" {
            panic!("hostile plugin panicked on purpose")
        } else if mode == "log-flood" {
            flood();
            normal(split, start, count)
        } else {
            normal(split, start, count)
        }
    }
}

fn read_outside() -> Result<Vec<Sample>, Error> {
    let mut first_error = None;
    for path in OUTSIDE {
        match std::fs::read_to_string(path) {
            Ok(content) => return Ok(vec![sample(content, 0)]),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let first = first_error.map(|e| e.to_string()).unwrap_or_default();
    Err(error(ErrorKind::Io, format!("read-outside: all reads refused: {first}")))
}

fn socket(port: &str) -> Result<Vec<Sample>, Error> {
    let port: u16 =
        port.trim().parse().map_err(|_| error(ErrorKind::InvalidArgument, format!("socket: bad port `{port}`")))?;
    match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(mut stream) => {
            let _ = stream.write_all(b"leak");
            let _ = stream.flush();
            Ok(Vec::new())
        }
        Err(e) => Err(error(ErrorKind::Io, format!("socket refused: {e}"))),
    }
}

/// Grows memory 16 MiB at a time, touching every byte and keeping every chunk, until the
/// allocator fails and the instance aborts (a trap).
fn exhaust_memory() -> ! {
    const CHUNK: usize = 16 << 20;
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = black_box(vec![0xA5u8; CHUNK]);
        held.push(chunk);
        black_box(&mut held);
    }
}

/// Spins forever; `black_box` keeps the optimiser from removing the loop.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Logs in a tight loop, with text that would recolour the terminal and reverse the line.
fn flood() {
    for i in 0..FLOOD_LINES {
        log(LogLevel::Info, &format!("flood {i} \u{1b}[31mred\u{1b}[0m \u{202e}desrever"));
    }
}

/// The well-behaved answer: the test split holds 8 samples of 2x2 grey pixels, label `i % 2`.
fn normal(split: Split, start: u64, count: u32) -> Result<Vec<Sample>, Error> {
    let len = match split {
        Split::Test => TEST_SIZE,
        Split::Train | Split::Validation => 0,
    };
    if start > len {
        return Err(error(
            ErrorKind::InvalidArgument,
            format!("start {start} is past the end of the split ({len} samples)"),
        ));
    }
    let end = start.saturating_add(u64::from(count)).min(len);
    Ok((start..end).map(|i| sample(format!("test/{i}"), i)).collect())
}

fn sample(id: String, i: u64) -> Sample {
    Sample {
        id,
        image: Some(Image::Raw(Pixels { width: 2, height: 2, channels: 1, data: vec![(i as u8).wrapping_mul(30); 4] })),
        labels: vec![(i % 2) as u32],
        qa: None,
        attributes: Vec::new(),
    }
}

export!(Component);
