//! Plain-text tables and timestamps for terminal output.

use std::fmt::Write as _;

/// Replaces control characters with U+FFFD: names, labels and times come from the server, and
/// a hostile one must not be able to send terminal escape sequences through a table.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// Left-aligned columns separated by three spaces, like `docker secret ls`. Cells are made
/// [`printable`].
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 == widths.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<width$}   ", width = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Key/value listing for one object (`operator status`, `token lookup`).
pub fn render_pairs(pairs: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|(k, v)| vec![(*k).to_owned(), v.clone()])
        .collect();
    render(&["Key", "Value"], &rows)
}

/// Shortens Vault's RFC 3339 nanosecond timestamps to seconds for tables:
/// `2018-03-22T02:24:06.945319214Z` becomes `2018-03-22T02:24:06Z`; `""` becomes `-`.
pub fn short_time(t: &str) -> String {
    if t.is_empty() {
        return "-".to_owned();
    }
    match t.split_once('.') {
        Some((head, tail)) if tail.ends_with('Z') => format!("{head}Z"),
        _ => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned() {
        let t = render(
            &["NAME", "VERSION"],
            &[
                vec!["db/password".into(), "3".into()],
                vec!["x".into(), "12".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME          VERSION\ndb/password   3\nx             12\n"
        );
    }

    #[test]
    fn control_characters_do_not_reach_the_terminal() {
        let t = render(&["NAME"], &[vec!["evil\x1b[31mred\nline".into()]]);
        assert!(!t.contains('\x1b'), "{t:?}");
        assert_eq!(t.lines().count(), 2, "{t:?}");
    }

    #[test]
    fn timestamps_are_shortened() {
        assert_eq!(
            short_time("2018-03-22T02:24:06.945319214Z"),
            "2018-03-22T02:24:06Z"
        );
        assert_eq!(short_time("2018-03-22T02:24:06Z"), "2018-03-22T02:24:06Z");
        assert_eq!(short_time(""), "-");
    }
}
