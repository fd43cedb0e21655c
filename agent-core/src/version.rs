//! Semantic versions (SemVer 2.0.0) and version requirements in Cargo's syntax (the
//! `semver` crate's, which the server validates manifests with), borrowed from the text
//! they are read from.

use core::cmp::Ordering;

use heapless::Vec;

use crate::MAX_COMPARATORS;

/// Why a string is not a version or a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a semantic version or version requirement")]
pub struct VersionError;

/// `MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: &'a str,
    pub build: &'a str,
}

impl<'a> Version<'a> {
    pub fn parse(s: &'a str) -> Result<Self, VersionError> {
        let (rest, build) = s.split_once('+').unwrap_or((s, ""));
        let (numbers, pre) = rest.split_once('-').unwrap_or((rest, ""));
        let mut parts = numbers.split('.');
        let mut number = || parts.next().and_then(numeric);
        let (major, minor, patch) = (number().ok_or(VersionError)?, number(), number());
        let (Some(minor), Some(patch), None) = (minor, patch, parts.next()) else {
            return Err(VersionError);
        };
        let well_formed = identifiers(pre, rest.contains('-'), true) && identifiers(build, s.contains('+'), false);
        well_formed.then_some(Self { major, minor, patch, pre, build }).ok_or(VersionError)
    }
}

/// A number without leading zeros.
fn numeric(s: &str) -> Option<u64> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits && (s == "0" || !s.starts_with('0'))).then(|| s.parse().ok()).flatten()
}

/// Dot-separated `[0-9A-Za-z-]+` identifiers; `present` says a separator announced them.
/// In a pre-release, numeric identifiers have no leading zeros.
fn identifiers(s: &str, present: bool, pre: bool) -> bool {
    if !present {
        return s.is_empty();
    }
    s.split('.').all(|id| {
        let charset = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let numeric_id = id.bytes().all(|b| b.is_ascii_digit());
        charset && !(pre && numeric_id && id.len() > 1 && id.starts_with('0'))
    })
}

/// Dot-separated identifiers as SemVer and the `semver` crate order them: numeric ones by
/// value and then by length (`1 < 01 < 2`; only build metadata may have leading zeros)
/// before alphanumeric ones, those in ASCII order; a shorter list first when one is a
/// prefix.
fn compare_identifiers(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        let (x, y) = match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => (x, y),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let order = match (digits(x), digits(y)) {
            (true, true) => {
                let (tx, ty) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty)).then_with(|| x.len().cmp(&y.len()))
            }
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

/// Build metadata: none first, then by identifiers.
fn compare_build(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (false, false) => compare_identifiers(a, b),
        (a_none, b_none) => b_none.cmp(&a_none),
    }
}

/// Pre-releases order before the release itself.
fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => compare_identifiers(a, b),
    }
}

impl Ord for Version<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_pre(self.pre, other.pre))
            .then_with(|| compare_build(self.build, other.build))
    }
}

impl PartialOrd for Version<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version<'_> {}

/// How a comparator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Exact,
    Greater,
    GreaterEq,
    Less,
    LessEq,
    Tilde,
    Caret,
    Wildcard,
}

/// One comparator: an operator and a version whose minor and patch may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Comparator<'a> {
    op: Op,
    major: u64,
    minor: Option<u64>,
    patch: Option<u64>,
    pre: &'a str,
}

/// Comma-separated comparators, all of which must match (`>=1.2.0, <2.0.0`); `*` alone
/// matches every release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReq<'a> {
    comparators: Vec<Comparator<'a>, MAX_COMPARATORS>,
}

impl<'a> VersionReq<'a> {
    pub fn parse(s: &'a str) -> Result<Self, VersionError> {
        let mut comparators = Vec::new();
        if s.trim() == "*" {
            return Ok(Self { comparators });
        }
        for part in s.split(',') {
            comparators.push(Comparator::parse(part.trim())?).map_err(|_| VersionError)?;
        }
        Ok(Self { comparators })
    }

    pub fn matches(&self, version: &Version<'_>) -> bool {
        self.comparators.iter().all(|c| c.matches(version))
            && (version.pre.is_empty() || self.comparators.iter().any(|c| c.admits_pre_release_of(version)))
    }
}

impl<'a> Comparator<'a> {
    fn parse(s: &'a str) -> Result<Self, VersionError> {
        let (op, rest) = [(">=", Op::GreaterEq), ("<=", Op::LessEq), ("=", Op::Exact), (">", Op::Greater)]
            .into_iter()
            .chain([("<", Op::Less), ("~", Op::Tilde), ("^", Op::Caret)])
            .find_map(|(prefix, op)| s.strip_prefix(prefix).map(|rest| (op, rest.trim_start())))
            .unwrap_or((Op::Caret, s));
        let (numbers, pre) = rest.split_once('-').unwrap_or((rest, ""));
        if !identifiers(pre, rest.contains('-'), true) {
            return Err(VersionError);
        }
        let mut parts = numbers.split('.');
        let major = parts.next().and_then(numeric).ok_or(VersionError)?;
        let (minor, patch, wildcard) = optional_parts(&mut parts)?;
        if parts.next().is_some() || (!pre.is_empty() && patch.is_none()) {
            return Err(VersionError);
        }
        let op = if wildcard && matches!(op, Op::Caret) && !s.starts_with('^') { Op::Wildcard } else { op };
        Ok(Self { op, major, minor, patch, pre })
    }

    fn matches(&self, v: &Version<'_>) -> bool {
        match self.op {
            Op::Exact | Op::Wildcard => self.matches_exact(v),
            Op::Greater => self.beyond(v, Ordering::Greater),
            Op::GreaterEq => self.matches_exact(v) || self.beyond(v, Ordering::Greater),
            Op::Less => self.beyond(v, Ordering::Less),
            Op::LessEq => self.matches_exact(v) || self.beyond(v, Ordering::Less),
            Op::Tilde => self.matches_tilde(v),
            Op::Caret => self.matches_caret(v),
        }
    }

    fn matches_exact(&self, v: &Version<'_>) -> bool {
        v.major == self.major
            && self.minor.is_none_or(|m| v.minor == m)
            && self.patch.is_none_or(|p| v.patch == p)
            && v.pre == self.pre
    }

    /// `v` lies strictly on the `side` of the comparator's version; a part it leaves out
    /// matches everything, so nothing lies beyond it there.
    fn beyond(&self, v: &Version<'_>, side: Ordering) -> bool {
        if v.major != self.major {
            return v.major.cmp(&self.major) == side;
        }
        let Some(minor) = self.minor else { return false };
        if v.minor != minor {
            return v.minor.cmp(&minor) == side;
        }
        let Some(patch) = self.patch else { return false };
        if v.patch != patch {
            return v.patch.cmp(&patch) == side;
        }
        compare_pre(v.pre, self.pre) == side
    }

    fn matches_tilde(&self, v: &Version<'_>) -> bool {
        if v.major != self.major || self.minor.is_some_and(|m| v.minor != m) {
            return false;
        }
        match self.patch {
            Some(p) if v.patch != p => v.patch > p,
            _ => compare_pre(v.pre, self.pre) != Ordering::Less,
        }
    }

    fn matches_caret(&self, v: &Version<'_>) -> bool {
        if v.major != self.major {
            return false;
        }
        let Some(minor) = self.minor else { return true };
        let Some(patch) = self.patch else {
            return if self.major > 0 { v.minor >= minor } else { v.minor == minor };
        };
        if self.major > 0 {
            if v.minor != minor {
                return v.minor > minor;
            }
            if v.patch != patch {
                return v.patch > patch;
            }
        } else if minor > 0 {
            if v.minor != minor {
                return false;
            }
            if v.patch != patch {
                return v.patch > patch;
            }
        } else if v.minor != minor || v.patch != patch {
            return false;
        }
        compare_pre(v.pre, self.pre) != Ordering::Less
    }

    /// A pre-release matches only a requirement naming a pre-release of the same version.
    fn admits_pre_release_of(&self, v: &Version<'_>) -> bool {
        self.major == v.major && self.minor == Some(v.minor) && self.patch == Some(v.patch) && !self.pre.is_empty()
    }
}

/// The minor and patch of a comparator, each left out or a wildcard (`*`, `x`, `X`) that
/// also leaves out the rest; and whether a wildcard was written.
fn optional_parts<'s>(
    parts: &mut impl Iterator<Item = &'s str>,
) -> Result<(Option<u64>, Option<u64>, bool), VersionError> {
    let wild = |p: &str| matches!(p, "*" | "x" | "X");
    let mut read = || match parts.next() {
        None => Ok((None, false)),
        Some(p) if wild(p) => Ok((None, true)),
        Some(p) => numeric(p).map(|n| (Some(n), false)).ok_or(VersionError),
    };
    let (minor, minor_wild) = read()?;
    if minor.is_none() {
        return Ok((None, None, minor_wild));
    }
    let (patch, patch_wild) = read()?;
    Ok((minor, patch, patch_wild))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version<'_> {
        Version::parse(s).unwrap()
    }

    fn req(s: &str) -> VersionReq<'_> {
        VersionReq::parse(s).unwrap()
    }

    #[test]
    fn versions_parse_strictly() {
        assert_eq!((v("1.4.2").major, v("1.4.2").minor, v("1.4.2").patch), (1, 4, 2));
        assert_eq!(v("1.0.0-rc.1+build.5").pre, "rc.1");
        for bad in ["1.4", "v1.4.2", "01.2.3", "1.2.3.4", "1.2.3-", "1.2.3-01", "1.2.3+", "1..3", "", "1.2.3-a_b"] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn precedence_follows_semver() {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2"];
        let more = ["1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"];
        let all: [&str; 11] = core::array::from_fn(|i| if i < 5 { ordered[i] } else { more[i - 5] });
        for pair in all.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_ne!(v("1.0.0+a"), v("1.0.0"), "build metadata tells versions apart, as the semver crate does");
        assert!(v("1.0.0+01") < v("1.0.0+2"), "numeric build identifiers by value");
        assert!(v("1.0.0+2") < v("1.0.0+02"), "then the longer one");
    }

    #[test]
    fn requirements_match_as_cargo_does() {
        let cases: [(&str, &str, bool); 22] = [
            (">=1.2.0, <2.0.0", "1.2.0", true),
            (">=1.2.0, <2.0.0", "1.9.3", true),
            (">=1.2.0, <2.0.0", "2.0.0", false),
            (">=1.2.0, <2.0.0", "1.1.9", false),
            (">=1.4, <2", "1.5.0", true),
            (">=1.4, <2", "2.0.0", false),
            ("^1.4", "1.9.0", true),
            ("^1.4", "1.3.9", false),
            ("1.4.2", "1.4.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.0.3", "0.0.4", false),
            ("~1.4.2", "1.4.9", true),
            ("~1.4.2", "1.5.0", false),
            ("=1.4", "1.4.7", true),
            (">1.4", "1.4.9", false),
            (">1.4", "1.5.0", true),
            ("<=1.4", "1.4.9", true),
            ("1.*", "1.9.9", true),
            ("*", "7.0.0", true),
            ("*", "7.0.0-rc.1", false),
            (">=1.0.0-rc.1", "1.0.0-rc.2", true),
            (">=1.0.0-rc.1", "1.1.0-rc.2", false),
        ];
        for (r, version, expected) in cases {
            assert_eq!(req(r).matches(&v(version)), expected, "{r} matches {version}");
        }
    }

    #[test]
    fn malformed_requirements_are_refused() {
        for bad in ["yes", ">= one", "1.2.3.4", "", ">=1.2, ", "1.2-rc"] {
            assert!(VersionReq::parse(bad).is_err(), "{bad}");
        }
    }
}
