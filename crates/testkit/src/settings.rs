//! A bench's settings from the environment: sizes and durations (`BENCH_EVENTS=1_000_000`) and
//! the sections to run (`BENCH_SECTIONS=1,3`).

/// A positive number from the environment (`_` allowed as a digit separator), or `default`.
pub fn env_num(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| parse_num(&v))
        .unwrap_or(default)
}

/// `text` as a positive number, `_` allowed as a digit separator.
pub fn parse_num(text: &str) -> Option<f64> {
    text.trim()
        .replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
}

/// `BENCH_SECTIONS=1,3` as numbers; `all` when unset or empty.
pub fn sections(all: &[u8]) -> Vec<u8> {
    std::env::var("BENCH_SECTIONS")
        .ok()
        .and_then(|s| parse_sections(&s))
        .unwrap_or_else(|| all.to_vec())
}

/// `1,3` as section numbers; `None` when it names none.
pub fn parse_sections(text: &str) -> Option<Vec<u8>> {
    let v: Vec<u8> = text
        .split(',')
        .filter_map(|p| p.trim().parse::<u8>().ok())
        .collect();
    (!v.is_empty()).then_some(v)
}

/// What the rerun line adds for the sections run: ` BENCH_SECTIONS=1,3`, or nothing when they
/// are `all`.
pub fn sections_setting(sections: &[u8], all: &[u8]) -> String {
    if sections == all {
        return String::new();
    }
    let s: Vec<String> = sections.iter().map(u8::to_string).collect();
    format!(" BENCH_SECTIONS={}", s.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_digit_separators_and_refuse_zero_and_words() {
        assert_eq!(parse_num(" 1_000_000 "), Some(1_000_000.0));
        assert_eq!(parse_num("2.5"), Some(2.5));
        assert_eq!(parse_num("0"), None);
        assert_eq!(parse_num("-3"), None);
        assert_eq!(parse_num("many"), None);
    }

    #[test]
    fn sections_skip_what_is_not_a_number_and_none_means_all() {
        assert_eq!(parse_sections("1, 3"), Some(vec![1, 3]));
        assert_eq!(parse_sections("2,x"), Some(vec![2]));
        assert_eq!(parse_sections(""), None);
        assert_eq!(parse_sections("all"), None);
    }

    #[test]
    fn the_rerun_line_names_sections_only_when_some_were_left_out() {
        assert_eq!(sections_setting(&[1, 2, 3], &[1, 2, 3]), "");
        assert_eq!(sections_setting(&[1, 3], &[1, 2, 3]), " BENCH_SECTIONS=1,3");
    }
}
