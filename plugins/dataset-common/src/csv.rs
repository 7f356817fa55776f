//! A CSV reader (RFC 4180: `,` separators, `"` quoting with `""` escapes, line breaks inside
//! quotes, CRLF or LF) whose every error names the file, the line and the column, as
//! `` `train.csv` line 7, column `Sex`: ... ``. Tabs are accepted as separators with
//! [`Csv::parse_with`].

use crate::{Attribute, Error, ErrorKind, attr, corrupt, error};

/// A parsed CSV file: a header and its rows, each with the line it starts on.
#[derive(Debug)]
pub struct Csv {
    file: String,
    header: Vec<String>,
    rows: Vec<(usize, Vec<String>)>,
}

/// One row, borrowed from its [`Csv`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    csv: &'a Csv,
    /// The line the row starts on (1-based; the header is line 1).
    pub line: usize,
    fields: &'a [String],
}

impl Csv {
    /// Parses comma-separated `text`, read from `file` (named in errors).
    pub fn parse(file: &str, text: &str) -> Result<Csv, Error> {
        Csv::parse_with(file, text, b',')
    }

    /// Parses `text` with the separator `sep`. Blank lines are skipped; every row must have as
    /// many fields as the header.
    pub fn parse_with(file: &str, text: &str, sep: u8) -> Result<Csv, Error> {
        Csv::build(file, records(file, text, sep)?.into_iter())
    }

    /// Parses comma-separated `text` whose header is the first line naming the column
    /// `column`; the lines above it (a spreadsheet's title rows) are skipped. Without such a
    /// line, the error names the column.
    pub fn parse_from_header(file: &str, text: &str, column: &str) -> Result<Csv, Error> {
        let mut records = records(file, text, b',')?.into_iter().peekable();
        while records.peek().is_some_and(|(_, fields)| !fields.iter().any(|f| f.trim() == column)) {
            records.next();
        }
        if records.peek().is_none() {
            return Err(corrupt(format!("`{file}`: no line names the column `{column}`")));
        }
        Csv::build(file, records)
    }

    fn build(file: &str, mut records: impl Iterator<Item = (usize, Vec<String>)>) -> Result<Csv, Error> {
        let Some((_, header)) = records.next() else {
            return Err(corrupt(format!("`{file}` is empty; a header line was expected")));
        };
        let header: Vec<String> = header.into_iter().map(|h| h.trim().to_owned()).collect();
        let mut rows = Vec::new();
        for (line, fields) in records {
            if fields.len() == 1 && fields[0].trim().is_empty() {
                continue;
            }
            if fields.len() != header.len() {
                return Err(corrupt(format!(
                    "`{file}` line {line}: {} fields, but the header has {}",
                    fields.len(),
                    header.len()
                )));
            }
            rows.push((line, fields));
        }
        Ok(Csv { file: file.to_owned(), header, rows })
    }

    /// The file's name, as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The header's column names.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The index of column `name`, if the header has it.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The index of column `name`; a missing column is an error naming the file and line 1.
    pub fn column(&self, name: &str) -> Result<usize, Error> {
        self.find(name).ok_or_else(|| {
            error(
                ErrorKind::CorruptData,
                format!("`{}` line 1: no column `{name}` (the header has: {})", self.file, self.header.join(", ")),
            )
        })
    }

    /// The columns of `names` (column, attribute key) that the header has, each with its
    /// attribute key; absent ones are skipped.
    pub fn optional(&self, names: &[(&str, &'static str)]) -> Vec<(usize, &'static str)> {
        names.iter().filter_map(|&(name, key)| self.find(name).map(|c| (c, key))).collect()
    }

    /// The rows, in file order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|(line, fields)| Row { csv: self, line: *line, fields })
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl<'a> Row<'a> {
    /// The field in column `col` (an index from [`Csv::column`]), trimmed.
    pub fn get(&self, col: usize) -> &'a str {
        self.fields.get(col).map_or("", |f| f.trim())
    }

    /// An error about column `col` of this row: `` `file` line N, column `name`: what ``.
    pub fn bad(&self, col: usize, what: impl std::fmt::Display) -> Error {
        let name = self.csv.header.get(col).map_or("?", String::as_str);
        corrupt(format!("`{}` line {}, column `{name}`: {what}", self.csv.file, self.line))
    }

    /// The field in column `col`, which must not be empty.
    pub fn required(&self, col: usize) -> Result<&'a str, Error> {
        let v = self.get(col);
        if v.is_empty() { Err(self.bad(col, "empty; a value is required")) } else { Ok(v) }
    }

    /// The sample attributes of `columns` (from [`Csv::optional`]) whose cells are not empty.
    pub fn attributes(&self, columns: &[(usize, &str)]) -> Vec<Attribute> {
        columns.iter().filter(|(c, _)| !self.get(*c).is_empty()).map(|&(c, key)| attr(key, self.get(c))).collect()
    }

    /// The field in column `col` as a number (empty, `nan` or a non-number is `None`).
    pub fn number(&self, col: usize) -> Option<f64> {
        self.get(col).parse::<f64>().ok().filter(|v| !v.is_nan())
    }
}

/// The cells pandas' `read_csv` reads as missing by default (its `na_values`), so that
/// `dropna()` can be reproduced.
pub const PANDAS_NA: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
];

impl Row<'_> {
    /// Whether pandas would read some cell of this row as missing (the rows `dropna()` drops).
    pub fn has_pandas_na(&self) -> bool {
        self.fields.iter().any(|f| PANDAS_NA.contains(&f.as_str()))
    }
}

/// Splits `text` into records of fields, each with the line it starts on.
fn records(file: &str, text: &str, sep: u8) -> Result<Vec<(usize, Vec<String>)>, Error> {
    let bytes = text.as_bytes();
    let (mut out, mut fields, mut field) = (Vec::new(), Vec::new(), Vec::<u8>::new());
    let (mut line, mut start_line, mut i) = (1usize, 1usize, 0usize);
    let (mut quoted, mut was_quoted) = (false, false);
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if quoted {
            match b {
                b'"' if bytes.get(i) == Some(&b'"') => {
                    field.push(b'"');
                    i += 1;
                }
                b'"' => quoted = false,
                b'\n' => {
                    line += 1;
                    field.push(b);
                }
                _ => field.push(b),
            }
            continue;
        }
        match b {
            b'"' if field.iter().all(u8::is_ascii_whitespace) && !was_quoted => {
                field.clear();
                (quoted, was_quoted) = (true, true);
            }
            b'"' => return Err(corrupt(format!("`{file}` line {line}: a stray `\"` inside an unquoted field"))),
            b'\r' if bytes.get(i) == Some(&b'\n') => {}
            b'\n' => {
                fields.push(take(&mut field));
                out.push((start_line, std::mem::take(&mut fields)));
                line += 1;
                start_line = line;
                was_quoted = false;
            }
            _ if b == sep => {
                fields.push(take(&mut field));
                was_quoted = false;
            }
            _ => field.push(b),
        }
    }
    if quoted {
        return Err(corrupt(format!("`{file}` line {start_line}: a quoted field is never closed")));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(take(&mut field));
        out.push((start_line, fields));
    }
    Ok(out)
}

/// The field's text (the input is UTF-8 and fields split at ASCII bytes, so this is lossless).
fn take(field: &mut Vec<u8>) -> String {
    String::from_utf8_lossy(&std::mem::take(field)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_lines_and_errors() {
        let csv = Csv::parse("a.csv", "x,y\n1,\"a, \"\"b\"\"\nc\"\n\n2,z\r\n").expect("parses");
        let rows: Vec<_> = csv.rows().map(|r| (r.line, r.get(0).to_owned(), r.get(1).to_owned())).collect();
        assert_eq!(rows, [(2, "1".into(), "a, \"b\"\nc".into()), (5, "2".into(), "z".into())]);
        let err = Csv::parse("a.csv", "x,y\n1\n").expect_err("short row");
        assert_eq!(err.message, "`a.csv` line 2: 1 fields, but the header has 2");
        let err = csv.column("w").expect_err("no column");
        assert!(err.message.starts_with("`a.csv` line 1: no column `w`"), "{}", err.message);
        let row = csv.rows().nth(1).expect("row");
        assert_eq!(row.bad(1, "bad").message, "`a.csv` line 5, column `y`: bad");
    }

    #[test]
    fn a_header_below_title_rows_and_pandas_missing_cells() {
        let text = "Title,,\n,Age,Diagnosis\n,,\n#002,47,None\n#004,58, 1\n";
        let csv = Csv::parse_from_header("od.csv", text, "Diagnosis").expect("parses");
        assert_eq!(csv.header(), ["", "Age", "Diagnosis"]);
        let rows: Vec<_> = csv.rows().collect();
        assert_eq!((rows[0].line, rows[1].get(0), rows[2].get(2)), (3, "#002", "1"));
        assert_eq!(rows.iter().map(|r| r.has_pandas_na()).collect::<Vec<_>>(), [true, true, false]);
        let err = Csv::parse_from_header("od.csv", "a,b\n", "Diagnosis").expect_err("no header");
        assert_eq!(err.message, "`od.csv`: no line names the column `Diagnosis`");
    }
}
