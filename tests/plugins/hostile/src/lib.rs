//! A dataset plugin that misbehaves on purpose, for the kernel's sandbox tests.
//!
//! `catalog` lists `hostile`; `open("hostile")` gives a small valid diagnosis dataset (classes
//! `a` and `b`, an empty train and validation split, 8 test samples). Every call reads
//! `/data/mode` (trimmed) and acts on it.
//!
//! Modes that break `catalog` or `dataset.info`:
//!
//! * `huge-catalog`: the catalog lists [`MANY`] names; `bad-catalog-name`: it lists a name
//!   holding an escape sequence that would clear the screen.
//! * `many-classes`: [`MANY`] class names; `long-class`: one class name of 1 MB;
//!   `dup-classes`: `a` twice; `empty-class`: an empty class name.
//! * `splits-unordered`: the splits listed test, train, validation; `splits-twice`: test twice.
//! * `wrong-name`: the info calls the dataset `impostor`.
//! * `control-text`: a description and licence full of control and bidirectional characters,
//!   the description 1 MB long.
//!
//! Modes that break `samples`:
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
//! * `long-error`: fails with a 10 MB message that starts by clearing the screen.
//! * `id-newline`: sample ids holding a line feed and a forged JSON line.
//! * `dup-ids`: sample `i` has id `s{i % 4}` (so ids repeat within a call and across calls).
//! * `path:NAME`: every sample's image is the path `NAME` in the data folder (a test puts a
//!   FIFO, a folder or a PNG header declaring a huge image there).
//! * `raw-large`: the test split has [`LARGE_COUNT`] samples of raw 1024x1024 RGB pixels.
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
/// How many names `huge-catalog` lists and classes `many-classes` declares.
const MANY: usize = 100_000;
/// The test split's size in `raw-large` mode.
const LARGE_COUNT: u64 = 64;

/// The mode the test set, from `/data/mode`.
fn mode() -> String {
    std::fs::read_to_string("/data/mode").map(|m| m.trim().to_owned()).unwrap_or_default()
}

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
        Ok(match mode().as_str() {
            "huge-catalog" => (0..MANY).map(|i| format!("d{i}")).collect(),
            "bad-catalog-name" => vec![NAME.to_string(), "evil\u{1b}[2J".to_string()],
            _ => vec![NAME.to_string()],
        })
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
        let mode = mode();
        let mut info = DatasetInfo {
            name: NAME.to_string(),
            description: "Test plugin that misbehaves as /data/mode says".to_string(),
            task: Task::Diagnosis,
            modality: Modality::Other,
            class_names: vec!["a".to_string(), "b".to_string()],
            multi_label: false,
            splits: vec![
                SplitSize { split: Split::Train, count: 0 },
                SplitSize { split: Split::Validation, count: 0 },
                SplitSize { split: Split::Test, count: test_size(&mode) },
            ],
            license: "CC0-1.0".to_string(),
            citation: String::new(),
        };
        match mode.as_str() {
            "many-classes" => info.class_names = (0..MANY).map(|i| format!("c{i}")).collect(),
            "long-class" => info.class_names[1] = "b".repeat(1 << 20),
            "dup-classes" => info.class_names[1] = "a".to_string(),
            "empty-class" => info.class_names[1] = String::new(),
            "splits-unordered" => info.splits.rotate_right(1),
            "splits-twice" => info.splits[0].split = Split::Test,
            "wrong-name" => info.name = "impostor".to_string(),
            "control-text" => {
                info.description = format!("\u{1b}[2J\u{202e}cleared{}", "x".repeat(1 << 20));
                info.license = "CC0\n{\"forged\": true}\r\u{9b}31m".to_string();
            }
            _ => {}
        }
        info
    }

    fn samples(&self, split: Split, start: u64, count: u32) -> Result<Vec<Sample>, Error> {
        let mode = mode();
        let mode = mode.as_str();
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
            normal(split, start, count, mode)
        } else if mode == "long-error" {
            Err(error(ErrorKind::Other, format!("\u{1b}[2Jcleared{}", "e".repeat(10 << 20))))
        } else {
            normal(split, start, count, mode)
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

/// The test split's size in `mode`.
fn test_size(mode: &str) -> u64 {
    if mode == "raw-large" { LARGE_COUNT } else { TEST_SIZE }
}

/// The well-behaved answer: the test split holds 8 samples of 2x2 grey pixels, label `i % 2`;
/// the modes that bend samples bend them here.
fn normal(split: Split, start: u64, count: u32, mode: &str) -> Result<Vec<Sample>, Error> {
    let len = match split {
        Split::Test => test_size(mode),
        Split::Train | Split::Validation => 0,
    };
    if start > len {
        return Err(error(
            ErrorKind::InvalidArgument,
            format!("start {start} is past the end of the split ({len} samples)"),
        ));
    }
    let end = start.saturating_add(u64::from(count)).min(len);
    Ok((start..end).map(|i| bent(sample(format!("test/{i}"), i), i, mode)).collect())
}

/// `sample` as `mode` bends it.
fn bent(mut sample: Sample, i: u64, mode: &str) -> Sample {
    if mode == "id-newline" {
        sample.id = format!("test/{i}\n{{\"id\": \"forged\", \"label\": 1}}");
    } else if mode == "dup-ids" {
        sample.id = format!("s{}", i % 4);
    } else if let Some(name) = mode.strip_prefix("path:") {
        sample.image = Some(Image::Path(name.to_string()));
    } else if mode == "raw-large" {
        let data = vec![(i as u8).wrapping_mul(3); 1024 * 1024 * 3];
        sample.image = Some(Image::Raw(Pixels { width: 1024, height: 1024, channels: 3, data }));
    }
    sample
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
