//! GPT-2's byte-level alphabet: every byte is shown as one printable Unicode character, so that
//! a vocabulary of strings can hold arbitrary bytes (`Ġ` is the space byte 0x20).

/// The character GPT-2's `bytes_to_unicode` assigns to each byte.
///
/// Printable Latin-1 bytes (`!`..=`~`, `¡`..=`¬`, `®`..=`ÿ`) stand for themselves; the other 68
/// bytes, in increasing order, take U+0100, U+0101, … .
pub(crate) const fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next_extra = 0x100u32;
    let mut byte = 0usize;
    while byte < 256 {
        let printable = (byte >= 0x21 && byte <= 0x7E)
            || (byte >= 0xA1 && byte <= 0xAC)
            || (byte >= 0xAE && byte <= 0xFF);
        let code = if printable {
            byte as u32
        } else {
            let code = next_extra;
            next_extra += 1;
            code
        };
        // Every code here is below U+0144, so it is a valid scalar value.
        table[byte] = match char::from_u32(code) {
            Some(c) => c,
            None => '\0',
        };
        byte += 1;
    }
    table
}

/// [`byte_to_char_table`], computed once at compile time.
pub(crate) const BYTE_TO_CHAR: [char; 256] = byte_to_char_table();

/// The byte behind U+0100 + n, for the 68 non-printable bytes.
const EXTRA_TO_BYTE: [u8; 68] = {
    let mut inverse = [0u8; 68];
    let mut byte = 0usize;
    while byte < 256 {
        let code = BYTE_TO_CHAR[byte] as u32;
        if code >= 0x100 {
            inverse[(code - 0x100) as usize] = byte as u8;
        }
        byte += 1;
    }
    inverse
};

/// The byte a byte-level character stands for, or `None` if `c` is not in the alphabet.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    let code = c as u32;
    let byte = match code {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => code,
        0x100..=0x143 => return Some(EXTRA_TO_BYTE[(code - 0x100) as usize]),
        _ => return None,
    };
    Some(byte as u8)
}

/// Decodes a byte-level token text into the bytes it stands for; `Err(c)` names the first
/// character outside the alphabet.
pub(crate) fn decode_token_text(text: &str) -> Result<Vec<u8>, char> {
    text.chars().map(|c| char_to_byte(c).ok_or(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_gpt2_landmarks() {
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
        assert_eq!(BYTE_TO_CHAR[b'\t' as usize], 'ĉ');
        assert_eq!(BYTE_TO_CHAR[0], 'Ā');
        assert_eq!(BYTE_TO_CHAR[0xAD], 'Ń');
        assert_eq!(BYTE_TO_CHAR[b'a' as usize], 'a');
        assert_eq!(BYTE_TO_CHAR[0xFF], 'ÿ');
    }

    #[test]
    fn table_is_a_bijection() {
        let mut seen = std::collections::BTreeSet::new();
        for b in 0..=255u8 {
            let c = BYTE_TO_CHAR[b as usize];
            assert!(seen.insert(c), "byte {b:#04x} maps to a repeated char {c:?}");
            assert_eq!(char_to_byte(c), Some(b));
        }
        assert_eq!(char_to_byte('Ą'), Some(0x04));
        assert_eq!(char_to_byte('ń'), None);
        assert_eq!(char_to_byte('é'), Some(0xE9));
    }
}
