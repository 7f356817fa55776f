//! A JSON file holding an array of objects (SLAKE's `test.json`, VQA-RAD's
//! `VQA_RAD Dataset Public.json`), read so that an error names the file and the line and
//! column where the entry at fault starts.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{Error, corrupt};

/// One object of the array, with where it starts in the file.
#[derive(Debug)]
pub struct Entry<'a> {
    file: &'a str,
    /// 1-based line and column of the entry's `{`.
    pub line: usize,
    /// See `line`.
    pub column: usize,
    /// 0-based position in the array.
    pub index: usize,
    /// The object's fields.
    pub fields: Map<String, Value>,
}

/// Parses `text` (read from `file`) as an array of objects.
pub fn array<'a>(file: &'a str, text: &str) -> Result<Vec<Entry<'a>>, Error> {
    let raws: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| {
        corrupt(format!("`{file}` line {}, column {}: not a JSON array of objects: {e}", e.line(), e.column()))
    })?;
    let base = text.as_ptr() as usize;
    raws.into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let offset = (raw.get().as_ptr() as usize).saturating_sub(base).min(text.len());
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
            let at = Entry { file, line, column, index, fields: Map::new() };
            match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::Object(fields)) => Ok(Entry { fields, ..at }),
                _ => Err(at.bad_entry("not a JSON object")),
            }
        })
        .collect()
}

impl Entry<'_> {
    fn at(&self) -> String {
        format!("`{}` line {}, column {} (entry {})", self.file, self.line, self.column, self.index)
    }

    /// An error about the entry as a whole.
    pub fn bad_entry(&self, what: impl std::fmt::Display) -> Error {
        corrupt(format!("{}: {what}", self.at()))
    }

    /// An error about field `key`.
    pub fn bad(&self, key: &str, what: impl std::fmt::Display) -> Error {
        corrupt(format!("{}, field `{key}`: {what}", self.at()))
    }

    /// The field `key`, which must be present.
    pub fn get(&self, key: &str) -> Result<&Value, Error> {
        self.fields.get(key).ok_or_else(|| self.bad(key, "missing"))
    }

    /// The field `key` as text: a string as is, a number, boolean or null as Python's `str()`
    /// would write it (`2`, `2.5`, `True`, `None`). Arrays and objects are an error.
    pub fn text(&self, key: &str) -> Result<String, Error> {
        match self.get(key)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(if *b { "True" } else { "False" }.to_owned()),
            Value::Null => Ok("None".to_owned()),
            _ => Err(self.bad(key, "expected a string or a number")),
        }
    }

    /// The field `key` as text when present and not empty.
    pub fn optional_text(&self, key: &str) -> Option<String> {
        self.fields.contains_key(key).then(|| self.text(key).ok()).flatten().filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_know_where_they_start() {
        let text = "[\n  {\"a\": 1},\n  {\"b\": \"x\"}\n]";
        let entries = array("f.json", text).expect("parses");
        assert_eq!((entries[1].line, entries[1].column, entries[1].index), (3, 3, 1));
        assert_eq!(entries[0].text("a").expect("a"), "1");
        assert_eq!(
            entries[1].text("a").expect_err("missing").message,
            "`f.json` line 3, column 3 (entry 1), field `a`: missing"
        );
        let err = array("f.json", "[{\"a\": 1},\n 3]").expect_err("not an object");
        assert_eq!(err.message, "`f.json` line 2, column 2 (entry 1): not a JSON object");
        assert!(array("f.json", "[{]").expect_err("syntax").message.starts_with("`f.json` line 1, column 3"));
    }
}
