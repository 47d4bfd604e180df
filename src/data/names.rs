//! First and last names for generated customers, from the lists in `data/names/`.
//!
//! Embedded in the binary so generation is offline and deterministic (no faker crate whose output could
//! change between versions).

use std::sync::OnceLock;

pub struct Names {
    pub first: Vec<&'static str>,
    pub last: Vec<&'static str>,
}

impl Names {
    pub fn builtin() -> &'static Names {
        static NAMES: OnceLock<Names> = OnceLock::new();
        NAMES.get_or_init(|| Names {
            first: lines(include_str!("../../data/names/first_names.txt")),
            last: lines(include_str!("../../data/names/last_names.txt")),
        })
    }
}

fn lines(text: &'static str) -> Vec<&'static str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn name_lists_are_large_and_clean() {
        let n = super::Names::builtin();
        assert!(n.first.len() >= 300 && n.last.len() >= 300);
        assert!(
            n.first
                .iter()
                .chain(&n.last)
                .all(|s| { s.chars().all(|c| c.is_ascii_alphabetic() || c == '-' || c == '\'') })
        );
    }
}
