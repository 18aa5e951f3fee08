//! An image's width and height from its first bytes (PNG, GIF, JPEG, WEBP), so
//! an estimate can apply the providers' size formulas without decoding any
//! pixels. Only headers are parsed: the host reads the first [`HEAD_BYTES`]
//! of a file; a JPEG whose frame header lies further in (a very large EXIF
//! block) gets `None`, and its row is charged the seed estimate.

/// How many leading bytes of a file the host reads to find its size: enough
/// for a JPEG with a typical EXIF block and thumbnail before its frame header.
pub const HEAD_BYTES: usize = 256 * 1024;

/// `(width, height)` in pixels, or `None` when the bytes are not a PNG, GIF,
/// JPEG or WEBP header this can read.
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let le16 = |i: usize| Some(u16::from_le_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]) as u32);
    let be32 = |i: usize| Some(u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?));
    let le24 = |i: usize| {
        let b = bytes.get(i..i + 3)?;
        Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
    };
    let size = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.get(12..16) == Some(b"IHDR") {
        (be32(16)?, be32(20)?)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        (le16(6)?, le16(8)?)
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        jpeg_size(bytes)?
    } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        match bytes.get(12..16)? {
            // Lossy: a key frame's start code, then 14-bit width and height.
            b"VP8 " if bytes.get(23..26) == Some(&[0x9D, 0x01, 0x2A]) => {
                (le16(26)? & 0x3FFF, le16(28)? & 0x3FFF)
            }
            // Lossless: a signature byte, then 14 bits each of width - 1 and height - 1.
            b"VP8L" if bytes.get(20) == Some(&0x2F) => {
                let b = bytes.get(21..25)?;
                let bits = u32::from_le_bytes(b.try_into().ok()?);
                ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
            }
            // Extended: canvas width - 1 and height - 1, 24 bits each.
            b"VP8X" => (le24(24)? + 1, le24(27)? + 1),
            _ => return None,
        }
    } else {
        return None;
    };
    (size.0 > 0 && size.1 > 0).then_some(size)
}

/// The size in a JPEG's first start-of-frame segment (SOF0..SOF15 but DHT,
/// JPG and DAC), walking the segments from the start.
fn jpeg_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| Some(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]) as u32);
    let mut i = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while *bytes.get(i)? == 0xFF && *bytes.get(i + 1)? == 0xFF {
            i += 1;
        }
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(i + 1)?;
        match marker {
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => i += 2,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                // Length (2), precision (1), height (2), width (2).
                return Some((be16(i + 7)?, be16(i + 5)?));
            }
            0xD9 | 0xDA => return None,
            _ => i += 2 + be16(i + 2)? as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers written by hand after the formats' specifications (PNG: ISO/IEC
    /// 15948 IHDR; GIF89a logical screen; JPEG: ITU T.81 B.2.2 frame header;
    /// WEBP: RFC 9649 sections 2.5 (VP8X), 5.2.1 (VP8L) and RFC 6386 9.1 (VP8)).
    #[test]
    fn sizes_are_read_from_each_formats_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&1024u32.to_be_bytes());
        png.extend_from_slice(&768u32.to_be_bytes());
        assert_eq!(image_size(&png), Some((1024, 768)));

        let gif = b"GIF89a\x20\x03\x58\x02";
        assert_eq!(image_size(gif), Some((800, 600)));

        // SOI, an APP0 segment of 16 bytes, fill bytes, then SOF2 (progressive).
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        jpeg.extend_from_slice(&[0u8; 14]);
        jpeg.extend_from_slice(&[0xFF, 0xFF, 0xC2, 0x00, 0x11, 0x08, 0x04, 0x38, 0x07, 0x80]);
        assert_eq!(image_size(&jpeg), Some((1920, 1080)));
        // A DHT segment (0xC4) is not a frame header: it is skipped.
        let mut dht = vec![0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x04, 0x00, 0x00];
        dht.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x40, 0x00, 0x20]);
        assert_eq!(image_size(&dht), Some((32, 64)));
        // Cut before its frame header: unknown, not a guess.
        assert_eq!(image_size(&jpeg[..20]), None);

        let riff = |chunk: &[u8], body: &[u8]| {
            let mut b = b"RIFF\0\0\0\0WEBP".to_vec();
            b.extend_from_slice(chunk);
            b.extend_from_slice(&[0, 0, 0, 0]);
            b.extend_from_slice(body);
            b
        };
        // VP8X: flags (4), canvas width - 1 and height - 1 (24 bits each).
        let vp8x = riff(b"VP8X", &[0, 0, 0, 0, 0xFF, 0x0F, 0x00, 0x37, 0x04, 0x00]);
        assert_eq!(image_size(&vp8x), Some((4096, 1080)));
        // VP8L: 0x2F, then width - 1 = 399 and height - 1 = 299 in 14 bits each.
        let bits: u32 = 399 | (299 << 14);
        let mut body = vec![0x2F];
        body.extend_from_slice(&bits.to_le_bytes());
        assert_eq!(image_size(&riff(b"VP8L", &body)), Some((400, 300)));
        // VP8: frame tag (3), start code, width and height (14 bits, scale bits set).
        let vp8 = riff(
            b"VP8 ",
            &[0, 0, 0, 0x9D, 0x01, 0x2A, 0x80, 0x42, 0xE0, 0x41],
        );
        assert_eq!(image_size(&vp8), Some((640, 480)));

        assert_eq!(image_size(b"<html>"), None);
        assert_eq!(image_size(b""), None);
    }

    /// The shipped example's images: 64 x 64 grayscale PNGs (`file` says so).
    #[test]
    fn the_shipped_digits_are_64_pixels_square() {
        let png = include_bytes!("../../../training-data/images/digit-0000.png");
        assert_eq!(image_size(png), Some((64, 64)));
    }
}
