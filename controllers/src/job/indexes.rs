//! Completion indexes of an Indexed Job, and their compact text form (`"0-2,5,7-8"`, upstream
//! `status.completedIndexes`).

use std::collections::BTreeSet;

/// Parses `"0-2,5"` into {0, 1, 2, 5}; malformed parts are skipped, indexes at or above
/// `completions` dropped (as upstream does when completions shrink).
pub fn parse(text: Option<&str>, completions: i32) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in text
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
    {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(from), Ok(to)) = (from.parse::<i32>(), to.parse::<i32>()) {
            set.extend((from..=to).filter(|i| *i < completions));
        }
    }
    set
}

/// Formats a set of indexes as ranges: {0, 1, 2, 5} is `"0-2,5"`.
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip() {
        let set = parse(Some("0-2,5,7-8"), 10);
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [0, 1, 2, 5, 7, 8]);
        assert_eq!(format(&set), "0-2,5,7-8");
        assert_eq!(format(&parse(Some("1,x,3-2,9"), 5)), "1");
        assert_eq!(format(&BTreeSet::new()), "");
    }
}
