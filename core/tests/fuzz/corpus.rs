//! The seed corpus (`tests/fuzz-corpus/<target>/*`, one input per file) and the
//! byte-level mutator that grows new inputs from it.

use std::fmt;
use std::path::PathBuf;

use proptest::collection::vec;
use proptest::prelude::*;

/// An input as bytes, shown as an escaped string when a case fails.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl Bytes {
    /// The bytes as the host would hand them over as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

/// The folder of a target's seeds.
pub fn dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target)
}

/// Every seed of `target`, sorted by file name. Panics if there is none: a target
/// without seeds would fuzz nothing but noise, silently.
pub fn seeds(target: &str) -> Vec<(String, Bytes)> {
    let dir = dir(target);
    let mut seeds: Vec<(String, Bytes)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).expect("a readable seed");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, Bytes(bytes))
        })
        .collect();
    seeds.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(seeds.len() >= 3, "too few seeds in {}", dir.display());
    seeds
}

/// Pieces that matter to at least one parser: CSV syntax, JSON syntax and shapes,
/// numbers at the edges, header syntax, units and dates.
const DICTIONARY: &[&[u8]] = &[
    b"\"",
    b"\"\"",
    b",",
    b"\r\n",
    b"\n",
    b"\r",
    b"\xEF\xBB\xBF",
    b"\xFF",
    b"\xC3",
    b"\0",
    b"\t",
    b" ",
    b"image,label\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"null",
    b"true",
    b"\\\"",
    b"\\u0000",
    b"\\ud800",
    b"-1",
    b"-0",
    b"0",
    b"1e999",
    b"1e-999",
    b"NaN",
    b"inf",
    b"4294967296",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999999999999",
    b"0.000000000001",
    b"\"choices\":[{\"message\":{\"content\":\"cat\"}}]",
    b"\"content\":",
    b"\"refusal\":\"no\"",
    b"\"finish_reason\":\"length\"",
    b"\"usage\":{\"prompt_tokens\":18446744073709551615}",
    b"\"error\":{\"message\":\"m\",\"code\":\"insufficient_quota\"}",
    b"\"detail\":[{\"msg\":\"x\"}]",
    b"{\\\"label\\\":\\\"cat\\\"}",
    b"```json\\n",
    b"\\n```",
    b"\"row\":",
    b"\"status\":\"success\"",
    b"\"finishedAt\":\"2025-01-24T10:30:00.000Z\"",
    b"\"config\":{",
    b"\"concurrency\":",
    b"retry-after: ",
    b"retry-after-ms: ",
    b"x-ratelimit-reset-requests: ",
    b"x-ratelimit-limit-requests: ",
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"Fri, 31 Dec 99999999999 23:59:59 GMT",
    b"1h2m3.5s",
    b"\xC2\xB5s",
    b"ms",
    b"9999999999h",
];

/// One edit of a seed. Positions and picks are taken modulo what they index, so
/// they fit any length.
#[derive(Clone, Debug)]
enum Edit {
    /// Overwrite a byte (xor with a non-zero mask).
    Flip(usize, u8),
    /// Insert raw bytes.
    Insert(usize, Vec<u8>),
    /// Insert a dictionary token.
    Token(usize, usize),
    /// Delete up to `n` bytes.
    Delete(usize, usize),
    /// Copy a run of up to `n` bytes to another place, `times` times.
    Duplicate(usize, usize, usize, usize),
    /// Cut the input here (a torn write).
    Truncate(usize),
    /// Replace the tail with the tail of another seed.
    Splice(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), 1u8..).prop_map(|(i, m)| Edit::Flip(i, m)),
        2 => (any::<usize>(), vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Edit::Insert(i, b)),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(i, t)| Edit::Token(i, t)),
        2 => (any::<usize>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        1 => (any::<usize>(), 1usize..64, any::<usize>(), 1usize..20)
            .prop_map(|(i, n, at, times)| Edit::Duplicate(i, n, at, times)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(o, i, j)| Edit::Splice(o, i, j)),
    ]
}

fn apply(seed: &[u8], others: &[(String, Bytes)], edits: &[Edit]) -> Vec<u8> {
    let mut b = seed.to_vec();
    // A position in 0..=len.
    let at = |i: &usize, len: usize| i % (len + 1);
    for e in edits {
        match e {
            Edit::Flip(i, m) if !b.is_empty() => {
                let p = i % b.len();
                b[p] ^= m;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, bytes) => {
                let p = at(i, b.len());
                b.splice(p..p, bytes.iter().copied());
            }
            Edit::Token(i, t) => {
                let p = at(i, b.len());
                b.splice(p..p, DICTIONARY[t % DICTIONARY.len()].iter().copied());
            }
            Edit::Delete(i, n) => {
                let p = at(i, b.len());
                let end = (p + n).min(b.len());
                b.drain(p..end);
            }
            Edit::Duplicate(i, n, to, times) => {
                let p = at(i, b.len());
                let run = b[p..(p + n).min(b.len())].to_vec();
                let q = at(to, b.len());
                b.splice(q..q, run.repeat(*times));
            }
            Edit::Truncate(i) => {
                let p = at(i, b.len());
                b.truncate(p);
            }
            Edit::Splice(other, i, j) => {
                let other = &others[other % others.len()].1 .0;
                let p = at(i, b.len());
                let q = at(j, other.len());
                b.truncate(p);
                b.extend_from_slice(&other[q..]);
            }
        }
    }
    b
}

/// A seed of `target` with 1 to 8 edits.
pub fn mutated(target: &str) -> impl Strategy<Value = Bytes> {
    let seeds = seeds(target);
    (any::<usize>(), vec(edit(), 1..8)).prop_map(move |(pick, edits)| {
        let seed = &seeds[pick % seeds.len()].1 .0;
        Bytes(apply(seed, &seeds, &edits))
    })
}

/// Arbitrary bytes, mostly short, sometimes long.
pub fn noise() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        4 => vec(any::<u8>(), 0..64),
        1 => vec(any::<u8>(), 0..4096),
        // Text-like noise reaches further into text parsers than random bytes do.
        2 => "[ -~\r\n\t\u{feff}é€]{0,200}".prop_map(String::into_bytes),
    ]
    .prop_map(Bytes)
}

#[test]
fn mutations_stay_near_their_seed_and_reach_every_edit() {
    let seeds = vec![
        ("a".to_owned(), Bytes(b"image,label\na.png,cat\n".to_vec())),
        ("b".to_owned(), Bytes(b"{\"x\":1}".to_vec())),
    ];
    let seed = &seeds[0].1 .0;
    assert_eq!(apply(seed, &seeds, &[Edit::Truncate(5)]), b"image");
    assert_eq!(
        apply(seed, &seeds, &[Edit::Delete(5, 6)]),
        b"image\na.png,cat\n"
    );
    assert_eq!(apply(seed, &seeds, &[Edit::Splice(1, 5, 5)]), b"image1}");
    assert_eq!(
        apply(seed, &seeds, &[Edit::Duplicate(0, 5, 0, 2)]),
        b"imageimageimage,label\na.png,cat\n"
    );
    assert_eq!(
        apply(seed, &seeds, &[Edit::Token(0, 1)]),
        b"\"\"image,label\na.png,cat\n"
    );
    assert_eq!(apply(b"", &seeds, &[Edit::Flip(3, 1)]), b"");
}
