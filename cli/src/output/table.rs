//! Plain-text tables for people: a header, left-aligned columns two spaces apart, the last
//! column unpadded (no trailing spaces), `-` for an empty cell.

/// A table being filled row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles (printed as given, e.g. `ID`, `LAST SEEN`).
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { header: header.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The header and the rows, one line each, every line ending in `\n`.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header[c])
                    .chain(self.rows.iter().map(|r| &r[c]))
                    .map(|cell| shown(cell).chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let last = line.len().saturating_sub(1);
            for (c, cell) in line.iter().enumerate() {
                let cell = shown(cell);
                out.push_str(cell);
                if c < last {
                    let pad = widths[c] - cell.chars().count() + 2;
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// An empty cell reads `-`, so columns stay readable (and splittable with `awk`).
fn shown(cell: &str) -> &str {
    if cell.is_empty() { "-" } else { cell }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_under_the_header_without_trailing_spaces() {
        let mut t = Table::new(["ID", "FIRMWARE", "ONLINE"]);
        t.row(["gw-berlin-1", "gateway-os 1.1.0", "yes"]);
        t.row(["gw-2", "", "no"]);
        assert_eq!(
            t.render(),
            "ID           FIRMWARE          ONLINE\n\
             gw-berlin-1  gateway-os 1.1.0  yes\n\
             gw-2         -                 no\n"
        );
        assert!(t.render().lines().all(|l| !l.ends_with(' ')));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn short_rows_are_filled_and_long_ones_cut() {
        let mut t = Table::new(["A", "B"]);
        t.row(["1"]);
        t.row(["2", "x", "dropped"]);
        assert_eq!(t.render(), "A  B\n1  -\n2  x\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new(["SITE", "N"]);
        t.row(["köln", "1"]);
        assert_eq!(t.render(), "SITE  N\nköln  1\n");
    }

    #[test]
    fn a_table_without_rows_is_empty() {
        assert!(Table::new(["ID"]).is_empty());
    }
}
