//! A reader for the Python pickles PathVQA ships its questions in (`qas/test/test_qa.pkl`: a list
//! of dicts of strings), following the opcode table of CPython's `Lib/pickletools.py`
//! (protocols 0 to 5). Only plain data is understood: strings, bytes, numbers, booleans,
//! `None`, lists, tuples and dicts. A class or function reference (`GLOBAL`, `REDUCE`, ...) is an
//! error, so nothing in the file is ever executed or trusted.

use std::collections::HashMap;

/// A plain Python value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// The value as Python's `str()` writes a string or number (`None` for containers).
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format!("{f:?}")),
            Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_owned()),
            Value::None => Some("None".to_owned()),
            Value::List(_) | Value::Dict(_) => None,
        }
    }
}

/// A stack item: a value or a MARK.
enum Item {
    Mark,
    Val(Value),
}

/// The reader's state: the input, the stack and the memo.
struct Machine<'a> {
    data: &'a [u8],
    at: usize,
    stack: Vec<Item>,
    memo: HashMap<u64, Value>,
}

/// Reads a pickle holding plain data. Errors give the byte offset of the opcode at fault.
pub fn load(data: &[u8]) -> Result<Value, String> {
    let mut m = Machine { data, at: 0, stack: Vec::new(), memo: HashMap::new() };
    loop {
        let start = m.at;
        let op = m.take(1)?[0];
        if op == b'.' {
            return match m.stack.pop() {
                Some(Item::Val(v)) if m.stack.is_empty() => Ok(v),
                _ => Err("the pickle does not end with one value on its stack".to_owned()),
            };
        }
        m.step(op).map_err(|e| format!("byte {start} (opcode 0x{op:02x}): {e}"))?;
    }
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len()).ok_or("the file ends early")?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.at..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("a text argument has no end of line")?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn string(&mut self, len_bytes: usize) -> Result<Value, String> {
        let n = usize::try_from(self.uint(len_bytes)?).map_err(|_| "a string is too long")?;
        let bytes = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::Val(v));
    }

    fn pop(&mut self) -> Result<Value, String> {
        match self.stack.pop() {
            Some(Item::Val(v)) => Ok(v),
            _ => Err("the stack has no value here".to_owned()),
        }
    }

    /// The values above the topmost MARK, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.stack.iter().rposition(|i| matches!(i, Item::Mark)).ok_or("no MARK on the stack")?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items.into_iter().filter_map(|i| if let Item::Val(v) = i { Some(v) } else { None }).collect())
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        match self.stack.last_mut() {
            Some(Item::Val(v)) => Ok(v),
            _ => Err("the stack has no value here".to_owned()),
        }
    }

    fn extend(&mut self, items: Vec<Value>) -> Result<(), String> {
        match self.top()? {
            Value::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => Err("APPEND to something that is not a list".to_owned()),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values".to_owned());
        }
        let Value::Dict(dict) = self.top()? else {
            return Err("SETITEM on something that is not a dict".to_owned());
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match dict.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => dict.push((k, v)),
            }
        }
        Ok(())
    }

    /// Memoizes the top value. Containers are memoized as they are now: a later GET of one is
    /// refused, since it would miss what was added since (PathVQA's files never share them).
    fn memoize(&mut self, key: u64) -> Result<(), String> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn get(&mut self, key: u64) -> Result<(), String> {
        match self.memo.get(&key) {
            Some(Value::List(_) | Value::Dict(_)) => Err("a shared list or dict (not plain data)".to_owned()),
            Some(v) => {
                let v = v.clone();
                self.push(v);
                Ok(())
            }
            None => Err(format!("memo entry {key} is not defined")),
        }
    }

    /// MEMOIZE, PUT, BINPUT, LONG_BINPUT, GET, BINGET, LONG_BINGET.
    fn memo_op(&mut self, op: u8) -> Result<(), String> {
        let key = match op {
            0x94 => self.memo.len() as u64,
            b'p' | b'g' => self.line()?.trim().parse().map_err(|_| "a malformed memo key")?,
            b'q' | b'h' => self.uint(1)?,
            _ => self.uint(4)?,
        };
        if matches!(op, b'g' | b'h' | b'j') { self.get(key) } else { self.memoize(key) }
    }

    fn step(&mut self, op: u8) -> Result<(), String> {
        match op {
            0x80 => drop(self.take(1)?), // PROTO
            0x95 => drop(self.take(8)?), // FRAME
            b'(' => self.stack.push(Item::Mark),
            b']' => self.push(Value::List(Vec::new())),
            b'}' => self.push(Value::Dict(Vec::new())),
            b')' => self.push(Value::List(Vec::new())),
            b'l' | b't' => {
                let items = self.pop_mark()?;
                self.push(Value::List(items));
            }
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Value::Dict(Vec::new()));
                self.set_items(items)?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let at = self.stack.len().checked_sub(n).ok_or("TUPLE with too few values")?;
                let items = self.stack.split_off(at);
                let items = items.into_iter().filter_map(|i| if let Item::Val(v) = i { Some(v) } else { None });
                let items: Vec<Value> = items.collect();
                if items.len() != n {
                    return Err("TUPLE over a MARK".to_owned());
                }
                self.push(Value::List(items));
            }
            b'a' => {
                let v = self.pop()?;
                self.extend(vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            _ => return self.scalar(op),
        }
        Ok(())
    }

    fn scalar(&mut self, op: u8) -> Result<(), String> {
        let v = match op {
            0x8c | b'U' | b'C' => self.string(1)?, // SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES
            b'X' | b'T' | b'B' => self.string(4)?, // BINUNICODE, BINSTRING, BINBYTES
            0x8d | 0x8e | 0x96 => self.string(8)?, // BINUNICODE8, BINBYTES8, BYTEARRAY8
            b'V' => Value::Str(self.line()?),      // UNICODE (protocol 0; raw-unicode-escape)
            b'S' => Value::Str(unquote(&self.line()?)), // STRING (protocol 0)
            b'K' => Value::Int(self.uint(1)? as i64), // BININT1
            b'M' => Value::Int(self.uint(2)? as i64), // BININT2
            b'J' => Value::Int(i64::from(self.uint(4)? as u32 as i32)), // BININT
            b'I' | b'L' => int_line(&self.line()?)?, // INT, LONG (protocol 0)
            0x8a => {
                // LONG1: little-endian two's complement of n bytes
                let n = self.uint(1)? as usize;
                let bytes = self.take(n)?;
                if n > 8 {
                    return Err("an integer too large".to_owned());
                }
                let mut v = bytes.iter().rev().fold(0i64, |acc, &b| (acc << 8) | i64::from(b));
                if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                Value::Int(v)
            }
            b'G' => Value::Float(f64::from_be_bytes(self.take(8)?.try_into().map_err(|_| "short float")?)),
            b'F' => Value::Float(self.line()?.trim().parse().map_err(|_| "a malformed FLOAT")?),
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            0x94 | b'p' | b'q' | b'r' | b'g' | b'h' | b'j' => return self.memo_op(op),
            b'0' => return self.pop().map(drop),
            b'2' => {
                let v = self.pop()?;
                self.push(v.clone());
                v
            }
            b'c' | 0x93 | b'R' | 0x81 | 0x92 | b'b' | b'i' | b'o' => {
                return Err("the file refers to a Python class or function; only plain data is read".to_owned());
            }
            _ => return Err("an opcode this reader does not know".to_owned()),
        };
        self.push(v);
        Ok(())
    }
}

fn int_line(text: &str) -> Result<Value, String> {
    let t = text.trim().trim_end_matches('L');
    match t {
        "00" => Ok(Value::Bool(false)),
        "01" => Ok(Value::Bool(true)),
        _ => t.parse().map(Value::Int).map_err(|_| format!("a malformed integer `{t}`")),
    }
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    t.strip_prefix(['\'', '"']).and_then(|t| t.strip_suffix(['\'', '"'])).unwrap_or(t).to_owned()
}
