//! Seeded mutations of corpus inputs, in the spirit of libFuzzer's: bit flips, random bytes,
//! truncation, byte insertion and deletion, chunk duplication, splicing two inputs, and
//! substitution of "interesting" numbers both as binary integers (IDX sizes, PNG and
//! safetensors headers) and as text (CSV and JSON fields).

use rand::Rng;

/// Inputs never grow past this (1 MiB): the parsers' size limits are tested by seeds that
/// declare large sizes, not by large files.
pub const MAX_INPUT: usize = 1 << 20;

const INTERESTING_INTS: [u64; 14] = [
    0,
    1,
    2,
    7,
    0x7f,
    0xff,
    0x100,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

const INTERESTING_TEXT: [&str; 16] = [
    "0",
    "1",
    "-1",
    "-0",
    "1e309",
    "-1e309",
    "1e-320",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "0.5",
    "",
];

/// Applies 1 to 4 random mutations to `input`; `others` are the corpus for splicing.
pub fn mutate<R: Rng>(rng: &mut R, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        mutate_once(rng, &mut out, others);
    }
    out.truncate(MAX_INPUT);
    out
}

fn mutate_once<R: Rng>(rng: &mut R, out: &mut Vec<u8>, others: &[Vec<u8>]) {
    let len = out.len();
    let pos = |rng: &mut R| if len == 0 { 0 } else { rng.random_range(0..len) };
    match rng.random_range(0..9) {
        0 if len > 0 => {
            let p = pos(rng);
            out[p] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let p = pos(rng);
            out[p] = rng.random();
        }
        2 => out.truncate(rng.random_range(0..=len)),
        3 => {
            let p = rng.random_range(0..=len);
            let n = rng.random_range(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            out.splice(p..p, bytes);
        }
        4 if len > 0 => {
            let p = pos(rng);
            let end = (p + rng.random_range(1..=16)).min(len);
            out.drain(p..end);
        }
        5 if len > 0 => {
            // Duplicate a chunk somewhere else (repeated records, repeated PNG chunks).
            let p = pos(rng);
            let end = (p + rng.random_range(1..=64)).min(len);
            let chunk = out[p..end].to_vec();
            let at = rng.random_range(0..=len);
            out.splice(at..at, chunk);
        }
        6 if !others.is_empty() => {
            // Splice: our prefix, another input's suffix.
            let other = &others[rng.random_range(0..others.len())];
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..=other.len());
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        7 if len > 0 => {
            let value = INTERESTING_INTS[rng.random_range(0..INTERESTING_INTS.len())];
            let width = [1usize, 2, 4, 8][rng.random_range(0..4)];
            let p = pos(rng);
            let bytes = if rng.random() { value.to_be_bytes() } else { value.to_le_bytes() };
            let take = if rng.random::<bool>() { &bytes[8 - width..] } else { &bytes[..width] };
            for (i, &b) in take.iter().enumerate() {
                if let Some(slot) = out.get_mut(p + i) {
                    *slot = b;
                }
            }
        }
        _ => replace_text_number(rng, out),
    }
}

/// Replaces the ASCII number nearest after a random position with an interesting one.
fn replace_text_number<R: Rng>(rng: &mut R, out: &mut Vec<u8>) {
    let start = rng.random_range(0..=out.len());
    let is_num = |b: u8| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'e' || b == b'+';
    let Some(first) = out[start..].iter().position(|b| b.is_ascii_digit()).map(|i| start + i) else {
        return;
    };
    let mut s = first;
    while s > 0 && is_num(out[s - 1]) {
        s -= 1;
    }
    let mut e = first;
    while e < out.len() && is_num(out[e]) {
        e += 1;
    }
    let text = INTERESTING_TEXT[rng.random_range(0..INTERESTING_TEXT.len())];
    out.splice(s..e, text.bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn mutations_are_seeded_and_bounded() {
        let corpus = vec![b"score,label\n0.5,1\n0.25,0\n".to_vec(), vec![0, 0, 8, 1, 0, 0, 0, 2, 1, 0]];
        let run = |seed| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            (0..200).map(|i| mutate(&mut rng, &corpus[i % 2], &corpus)).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same mutations");
        assert_ne!(a, run(8), "another seed, other mutations");
        assert!(a.iter().all(|m| m.len() <= MAX_INPUT));
        // Mutations change the input most of the time (a truncation to full length does not).
        let changed = a.iter().enumerate().filter(|(i, m)| **m != corpus[i % 2]).count();
        assert!(changed > 150, "only {changed} of 200 mutations changed the input");
    }
}
