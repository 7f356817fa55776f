//! A restricted unpickler for the `data.pkl` that `torch.save` writes (pickle protocols 2-5, as
//! described by CPython's `Lib/pickletools.py`; torch's side in `torch/serialization.py` and
//! `torch/_utils.py`). It builds plain values only: a global is a name matched against a short
//! allowlist (torch's tensor rebuilders, its storage classes, `collections.OrderedDict`), a
//! `REDUCE` runs one of those rebuilders as Rust code, and everything else is refused. Nothing
//! from the file is ever executed.

use std::collections::HashMap;

use safetensors::Dtype;

/// Values in memo copies and containers, all told, before the file is refused (a pickle can
/// copy a container into itself and double its size with each few bytes).
const MAX_VALUES: usize = 1 << 24;
/// Container nesting before the file is refused (torch's state dicts nest three deep).
const MAX_DEPTH: usize = 64;
/// Tensor dimensions before a rebuild is refused.
const MAX_DIMS: usize = 16;

/// A refusal: what is wrong and at which byte of the pickle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PickleError {
    /// The byte offset of the opcode at fault.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

/// A storage as a persistent id names it: `('storage', torch.FloatStorage, key, location, numel)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    /// The element type.
    pub dtype: Dtype,
    /// The archive entry `data/<key>`.
    pub key: String,
    /// The storage's element count.
    pub numel: usize,
}

/// A tensor as `torch._utils._rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorRef {
    /// Its storage.
    pub storage: StorageRef,
    /// The first element, in elements from the storage's start.
    pub offset: usize,
    /// The shape.
    pub shape: Vec<usize>,
    /// The strides, in elements.
    pub strides: Vec<usize>,
}

/// The callables and classes the unpickler knows by name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Storage(Dtype),
}

impl Global {
    fn find(module: &str, name: &str) -> Option<Global> {
        let storage = |d| Some(Global::Storage(d));
        match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch._utils", "_rebuild_parameter_with_state") => Some(Global::RebuildParameterWithState),
            ("torch", "DoubleStorage") => storage(Dtype::F64),
            ("torch", "FloatStorage") => storage(Dtype::F32),
            ("torch", "HalfStorage") => storage(Dtype::F16),
            ("torch", "BFloat16Storage") => storage(Dtype::BF16),
            ("torch", "LongStorage") => storage(Dtype::I64),
            ("torch", "IntStorage") => storage(Dtype::I32),
            ("torch", "ShortStorage") => storage(Dtype::I16),
            ("torch", "CharStorage") => storage(Dtype::I8),
            ("torch", "ByteStorage") => storage(Dtype::U8),
            ("torch", "BoolStorage") => storage(Dtype::BOOL),
            _ => None,
        }
    }
}

/// A container's items with its cached size (values inside, itself included) and nesting depth.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Items {
    items: Vec<Value>,
    size: usize,
    depth: usize,
}

impl Items {
    fn new(items: Vec<Value>) -> Items {
        let size = 1 + items.iter().map(Value::size).sum::<usize>();
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        Items { items, size, depth }
    }

    fn push(&mut self, v: Value) {
        self.size += v.size();
        self.depth = self.depth.max(1 + v.depth());
        self.items.push(v);
    }
}

/// A value on the unpickler's stack.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Items),
    List(Items),
    /// Key-value pairs in insertion order (a later duplicate key wins, as in Python).
    Dict(Items),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

impl Value {
    fn size(&self) -> usize {
        match self {
            Value::Tuple(i) | Value::List(i) | Value::Dict(i) => i.size,
            _ => 1,
        }
    }

    fn depth(&self) -> usize {
        match self {
            Value::Tuple(i) | Value::List(i) | Value::Dict(i) => i.depth,
            _ => 0,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }

    /// The `(key, value)` pairs of a dict, or `None` for anything else.
    pub fn pairs(&self) -> Option<impl Iterator<Item = (&Value, &Value)>> {
        let Value::Dict(d) = self else { return None };
        Some(d.items.chunks_exact(2).map(|kv| (&kv[0], &kv[1])))
    }
}

/// Unpickles `data`, resolving nothing but the allowlisted globals.
pub(crate) fn load(data: &[u8]) -> Result<Value, PickleError> {
    Machine { data, pos: 0, at: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), budget: MAX_VALUES }
        .run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// The offset of the opcode being run, for errors.
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    budget: usize,
}

type Step = Result<(), PickleError>;

impl Machine<'_> {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError { offset: self.at, message: message.into() })
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let Some(bytes) = self.pos.checked_add(n).and_then(|end| self.data.get(self.pos..end)) else {
            return self.fail(format!("the pickle ends inside an opcode's argument ({n} bytes wanted)"));
        };
        self.pos += n;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, PickleError> {
        let bytes = self.take(n)?;
        Ok(bytes.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn len_arg(&mut self, n: usize) -> Result<usize, PickleError> {
        let len = self.uint(n)?;
        match usize::try_from(len) {
            Ok(len) if len <= self.data.len() - self.pos => Ok(len),
            _ => self.fail(format!("a length of {len} bytes runs past the end of the pickle")),
        }
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.fail("a GLOBAL name without its newline");
        };
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(text)
    }

    fn charge(&mut self, n: usize) -> Step {
        match self.budget.checked_sub(n) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => self.fail(format!("the pickle builds more than {MAX_VALUES} values; refused")),
        }
    }

    fn push(&mut self, v: Value) -> Step {
        self.charge(1)?;
        if v.depth() > MAX_DEPTH {
            return self.fail(format!("containers nested deeper than {MAX_DEPTH}; refused"));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.fail("an opcode pops from an empty stack");
        }
        self.stack.pop().map_or_else(|| self.fail("an opcode pops from an empty stack"), Ok)
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return self.fail("an opcode needs a MARK that is not there");
        };
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.fail("an opcode needs a value on an empty stack");
        }
        let at = self.at;
        self.stack.last_mut().ok_or_else(|| PickleError { offset: at, message: "empty stack".into() })
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            self.at = self.pos;
            let op = *self.take(1)?.first().unwrap_or(&0);
            if op == b'.' {
                let v = self.pop()?;
                return if self.stack.is_empty() && self.marks.is_empty() {
                    Ok(v)
                } else {
                    self.fail("STOP with values left on the stack")
                };
            }
            self.step(op)?;
        }
    }

    fn step(&mut self, op: u8) -> Step {
        match op {
            0x80 => match self.uint(1)? {
                2..=5 => Ok(()),
                p => self.fail(format!("pickle protocol {p}; torch.save writes 2 (up to 5 is read)")),
            },
            0x95 => self.uint(8).map(drop), // FRAME: a hint for buffered readers.
            b'(' => {
                self.marks.push(self.stack.len());
                Ok(())
            }
            b'0' => self.pop().map(drop),
            b'1' => self.pop_mark().map(drop),
            _ => match self.scalar(op)? {
                Some(v) => self.push(v),
                None => self.structure(op),
            },
        }
    }

    /// Opcodes that push one scalar or an empty container; `None` for any other opcode.
    fn scalar(&mut self, op: u8) -> Result<Option<Value>, PickleError> {
        let v = match op {
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            b'K' => Value::Int(self.uint(1)? as i64),
            b'M' => Value::Int(self.uint(2)? as i64),
            b'J' => Value::Int(i64::from(self.uint(4)? as u32 as i32)),
            0x8a => self.long1()?,
            b'G' => Value::Float(f64::from_bits(u64::from_be_bytes(self.fixed()?))),
            b'X' | 0x8c | 0x8d => {
                let n = self.len_arg(match op {
                    0x8c => 1,
                    b'X' => 4,
                    _ => 8,
                })?;
                let bytes = self.take(n)?.to_vec();
                match String::from_utf8(bytes) {
                    Ok(s) => Value::Str(s),
                    Err(_) => return self.fail("a string that is not UTF-8"),
                }
            }
            b'C' | b'B' | 0x8e => {
                let n = self.len_arg(match op {
                    b'C' => 1,
                    b'B' => 4,
                    _ => 8,
                })?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            b'}' => Value::Dict(Items::new(Vec::new())),
            b']' => Value::List(Items::new(Vec::new())),
            b')' => Value::Tuple(Items::new(Vec::new())),
            _ => return Ok(None),
        };
        Ok(Some(v))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn long1(&mut self) -> Result<Value, PickleError> {
        let n = self.len_arg(1)?;
        if n > 8 {
            return self.fail(format!("a {n}-byte integer; at most 8 bytes are read"));
        }
        let bytes = self.take(n)?;
        let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
        buf[..n].copy_from_slice(bytes);
        Ok(Value::Int(i64::from_le_bytes(buf)))
    }

    /// Memo, containers, globals and calls.
    fn structure(&mut self, op: u8) -> Step {
        match op {
            b'q' | b'r' | 0x94 => {
                let key = match op {
                    b'q' => self.uint(1)? as u32,
                    b'r' => self.uint(4)? as u32,
                    _ => u32::try_from(self.memo.len()).unwrap_or(u32::MAX),
                };
                let v = self.top()?.clone();
                self.charge(v.size())?;
                self.memo.insert(key, v);
                Ok(())
            }
            b'h' | b'j' => {
                let key = if op == b'h' { self.uint(1)? } else { self.uint(4)? } as u32;
                let Some(v) = self.memo.get(&key).cloned() else {
                    return self.fail(format!("BINGET of memo entry {key}, which was never stored"));
                };
                self.charge(v.size())?;
                self.push(v)
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push(Value::Tuple(Items::new(items)))
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                items.reverse();
                self.push(Value::Tuple(Items::new(items)))
            }
            b'a' | b'e' => {
                let items = if op == b'a' { vec![self.pop()?] } else { self.pop_mark()? };
                self.extend(items, "APPEND", false)
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = self.pop()?;
                    vec![self.pop()?, v]
                } else {
                    self.pop_mark()?
                };
                if items.len() % 2 != 0 {
                    return self.fail("SETITEMS with an odd number of values");
                }
                self.extend(items, "SETITEM", true)
            }
            b'c' => {
                let (module, name) = (self.line()?, self.line()?);
                self.global("GLOBAL", &module, &name)
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.global("STACK_GLOBAL", &m, &n),
                    _ => self.fail("STACK_GLOBAL whose module and name are not strings"),
                }
            }
            b'R' => self.reduce(),
            b'b' => self.build(),
            b'Q' => {
                let pid = self.pop()?;
                let storage = self.storage(pid)?;
                self.push(Value::Storage(storage))
            }
            _ => self.fail(format!(
                "opcode 0x{op:02x} ({}) is not one torch.save writes for tensors; refused, nothing was executed",
                opcode_name(op)
            )),
        }
    }

    fn extend(&mut self, items: Vec<Value>, what: &str, dict: bool) -> Step {
        let added: usize = items.iter().map(Value::size).sum();
        self.charge(added)?;
        let at = self.at;
        let container = match self.top()? {
            Value::Dict(c) if dict => c,
            Value::List(c) if !dict => c,
            other => {
                let kind = other.kind();
                return Err(PickleError { offset: at, message: format!("{what} on {kind}; refused") });
            }
        };
        items.into_iter().for_each(|v| container.push(v));
        let depth = container.depth;
        if depth > MAX_DEPTH {
            return self.fail(format!("containers nested deeper than {MAX_DEPTH}; refused"));
        }
        Ok(())
    }

    fn global(&mut self, op: &str, module: &str, name: &str) -> Step {
        match Global::find(module, name) {
            Some(g) => self.push(Value::Global(g)),
            None => self.fail(format!(
                "refused {op} `{module}.{name}`: the restricted unpickler allows only torch's tensor \
                 rebuilders, its storage classes and collections.OrderedDict; nothing was executed"
            )),
        }
    }

    fn reduce(&mut self) -> Step {
        let args = self.pop()?;
        let callable = self.pop()?;
        let Value::Tuple(args) = args else {
            return self.fail("REDUCE whose arguments are not a tuple");
        };
        let v = match callable {
            Value::Global(Global::OrderedDict) => match args.items.as_slice() {
                [] => Value::Dict(Items::new(Vec::new())),
                _ => return self.fail("collections.OrderedDict called with arguments; refused"),
            },
            Value::Global(Global::RebuildTensorV2) => Value::Tensor(self.rebuild_tensor(args.items)?),
            Value::Global(Global::RebuildParameter | Global::RebuildParameterWithState) => {
                match args.items.into_iter().next() {
                    Some(t @ Value::Tensor(_)) => t,
                    _ => return self.fail("_rebuild_parameter of something that is not a tensor"),
                }
            }
            other => {
                let what = if let Value::Global(g) = &other { format!("global {g:?}") } else { other.kind().into() };
                return self.fail(format!("REDUCE calling {what}; only torch's tensor rebuilders are called"));
            }
        };
        self.push(v)
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    fn rebuild_tensor(&self, args: Vec<Value>) -> Result<TensorRef, PickleError> {
        let mut it = args.into_iter();
        let (
            Some(Value::Storage(storage)),
            Some(Value::Int(offset)),
            Some(Value::Tuple(size)),
            Some(Value::Tuple(stride)),
        ) = (it.next(), it.next(), it.next(), it.next())
        else {
            return self.fail("_rebuild_tensor_v2 with arguments other than (storage, offset, size, stride, ...)");
        };
        let dims = |t: Items| -> Option<Vec<usize>> {
            t.items.iter().map(|v| if let Value::Int(i) = v { usize::try_from(*i).ok() } else { None }).collect()
        };
        let (Some(shape), Some(strides), Ok(offset)) = (dims(size), dims(stride), usize::try_from(offset)) else {
            return self.fail("a tensor with a negative or non-integer offset, size or stride");
        };
        if shape.len() != strides.len() || shape.len() > MAX_DIMS {
            return self.fail(format!("a tensor with {} sizes and {} strides", shape.len(), strides.len()));
        }
        Ok(TensorRef { storage, offset, shape, strides })
    }

    fn build(&mut self) -> Step {
        let state = self.pop()?;
        let target = self.top()?;
        let known = match (&*target, &state) {
            // An OrderedDict's instance dict: the state dict's `_metadata` (module versions).
            (Value::Dict(_), Value::Dict(_) | Value::None) => true,
            (Value::Tensor(_), Value::None) => true,
            (Value::Tensor(_), Value::Dict(d) | Value::Tuple(d)) => d.items.is_empty(),
            _ => false,
        };
        if known {
            return Ok(());
        }
        let (t, s) = (target.kind(), state.kind());
        self.fail(format!("BUILD of {t} with {s} as state; refused"))
    }

    fn storage(&self, pid: Value) -> Result<StorageRef, PickleError> {
        if let Value::Tuple(t) = &pid
            && let [
                Value::Str(tag),
                Value::Global(Global::Storage(dtype)),
                Value::Str(key),
                Value::Str(_),
                Value::Int(n),
            ] = t.items.as_slice()
            && tag == "storage"
            && let Ok(numel) = usize::try_from(*n)
        {
            return Ok(StorageRef { dtype: *dtype, key: key.clone(), numel });
        }
        self.fail(format!("a persistent id that is not a torch storage reference ({}); refused", pid.kind()))
    }
}

/// The name of an opcode the unpickler refuses, for the error.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        b'S' => "STRING",
        b'T' | b'U' => "BINSTRING",
        b'V' => "UNICODE",
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'g' => "GET",
        b'p' => "PUT",
        b'd' => "DICT",
        b'l' => "LIST",
        b'2' => "DUP",
        0x82..=0x84 => "EXT",
        0x8b => "LONG4",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_it_can_overflow_the_stack() {
        let mut p = vec![0x80, 2, b')'];
        p.extend(std::iter::repeat_n(0x85, 100_000)); // TUPLE1, nesting one deeper each time
        p.push(b'.');
        let err = load(&p).expect_err("too deep");
        assert!(err.message.contains("nested deeper"), "{err:?}");
    }

    #[test]
    fn memo_doubling_is_refused_by_the_value_budget() {
        let mut p = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..40 {
            p.extend([b'0', b'h', 0, b'h', 0, 0x86, b'q', 0]); // x = (x, x)
        }
        p.push(b'.');
        let err = load(&p).expect_err("too big");
        assert!(err.message.contains("more than"), "{err:?}");
    }

    #[test]
    fn reduce_is_only_for_the_rebuilders() {
        let p = b"\x80\x02ctorch\nFloatStorage\n)R.";
        let err = load(p).expect_err("refused");
        assert!(err.message.contains("REDUCE calling global Storage(F32)"), "{err:?}");
        let err = load(b"\x80\x02cbuiltins\neval\n.").expect_err("refused");
        assert!(err.message.contains("`builtins.eval`") && err.offset == 2, "{err:?}");
    }
}
