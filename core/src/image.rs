//! Image bytes to `data:` URL: the host reads the file, the core checks it and encodes
//! it, so the native CLI and the browser send the very same URL.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Largest image accepted, in bytes (20 MiB, OpenAI's per-image limit).
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

const MIB: f64 = 1024.0 * 1024.0;

/// The MIME type of an image from its first bytes: `image/png`, `image/jpeg`,
/// `image/webp` or `image/gif`. `None` for anything else.
pub fn sniff_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

/// `data:{mime};base64,{bytes}` for a PNG, JPEG, WEBP or GIF image of at most
/// [`MAX_IMAGE_BYTES`]. The type is read from the bytes, never from a file name.
pub fn to_data_url(bytes: &[u8]) -> Result<String, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ImageError::TooLarge {
            bytes: bytes.len(),
            max: MAX_IMAGE_BYTES,
        });
    }
    let Some(mime) = sniff_mime(bytes) else {
        let first_bytes = bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(ImageError::UnknownType { first_bytes });
    };
    let mut url = String::with_capacity(5 + mime.len() + 8 + bytes.len().div_ceil(3) * 4);
    url.push_str("data:");
    url.push_str(mime);
    url.push_str(";base64,");
    STANDARD.encode_string(bytes, &mut url);
    Ok(url)
}

/// Why image bytes cannot be sent.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageError {
    /// The file is empty.
    #[error("image file is empty")]
    Empty,
    /// The file is over the size limit.
    #[error("image is {}, over the {} limit", mib(*bytes), mib(*max))]
    TooLarge {
        /// Size of the file, in bytes.
        bytes: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// The bytes are not a PNG, JPEG, WEBP or GIF image.
    #[error(
        "not a PNG, JPEG, WEBP or GIF image (it starts with bytes {first_bytes}); \
         is it an HTML error page or a different format?"
    )]
    UnknownType {
        /// Hex of the first (up to 8) bytes, space-separated, e.g. `3c 21 44 4f`.
        first_bytes: String,
    },
}

/// `25.3 MiB`, or `20 MiB` for a whole number of MiB.
fn mib(bytes: usize) -> String {
    if bytes % (1024 * 1024) == 0 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 33 bytes of a real 64x64 grayscale PNG (`uci-digits/digit-0000.png`):
    /// signature + IHDR chunk.
    const PNG_HEAD: [u8; 33] = [
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, // signature
        0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, // IHDR length + type
        0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x40, // width 64, height 64
        0x08, 0x00, 0x00, 0x00, 0x00, // depth 8, grayscale, deflate, no filter, no interlace
        0x8F, 0x02, 0x2E, 0x02, // CRC
    ];
    const JPEG_HEAD: [u8; 11] = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ];
    const WEBP_HEAD: &[u8] = b"RIFF\x24\x00\x00\x00WEBPVP8 ";
    const GIF87_HEAD: &[u8] = b"GIF87a\x01\x00\x01\x00";
    const GIF89_HEAD: &[u8] = b"GIF89a\x01\x00\x01\x00";

    #[test]
    fn sniffs_each_supported_type() {
        assert_eq!(sniff_mime(&PNG_HEAD), Some("image/png"));
        assert_eq!(sniff_mime(&JPEG_HEAD), Some("image/jpeg"));
        assert_eq!(sniff_mime(WEBP_HEAD), Some("image/webp"));
        assert_eq!(sniff_mime(GIF87_HEAD), Some("image/gif"));
        assert_eq!(sniff_mime(GIF89_HEAD), Some("image/gif"));
    }

    #[test]
    fn rejects_look_alikes() {
        // RIFF container that is not WEBP (a WAV file).
        assert_eq!(sniff_mime(b"RIFF\x24\x00\x00\x00WAVEfmt "), None);
        // Truncated RIFF header.
        assert_eq!(sniff_mime(b"RIFF\x24\x00\x00\x00WEB"), None);
        assert_eq!(sniff_mime(b"GIF88a"), None);
        assert_eq!(sniff_mime(&PNG_HEAD[..7]), None);
        assert_eq!(sniff_mime(&[0xFF, 0xD8]), None);
        assert_eq!(sniff_mime(b"<!DOCTYPE html>"), None);
        assert_eq!(sniff_mime(b""), None);
    }

    #[test]
    fn data_url_prefix_for_each_type() {
        for (bytes, prefix) in [
            (&PNG_HEAD[..], "data:image/png;base64,"),
            (&JPEG_HEAD[..], "data:image/jpeg;base64,"),
            (WEBP_HEAD, "data:image/webp;base64,"),
            (GIF87_HEAD, "data:image/gif;base64,"),
            (GIF89_HEAD, "data:image/gif;base64,"),
        ] {
            let url = to_data_url(bytes).unwrap();
            assert!(url.starts_with(prefix), "{url}");
            let payload = &url[prefix.len()..];
            assert_eq!(STANDARD.decode(payload).unwrap(), bytes);
        }
    }

    #[test]
    fn png_data_url_is_exact() {
        let url = to_data_url(&PNG_HEAD[..8]).unwrap();
        assert_eq!(url, "data:image/png;base64,iVBORw0KGgo=");
        let url = to_data_url(&PNG_HEAD).unwrap();
        assert_eq!(
            url,
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAAAAACPAi4C"
        );
    }

    #[test]
    fn empty_is_an_error() {
        assert_eq!(to_data_url(&[]), Err(ImageError::Empty));
        assert_eq!(ImageError::Empty.to_string(), "image file is empty");
    }

    #[test]
    fn too_large_is_checked_before_type() {
        let mut big = vec![0u8; MAX_IMAGE_BYTES + 1];
        big[..8].copy_from_slice(&PNG_HEAD[..8]);
        let err = to_data_url(&big).unwrap_err();
        assert_eq!(
            err,
            ImageError::TooLarge {
                bytes: MAX_IMAGE_BYTES + 1,
                max: MAX_IMAGE_BYTES
            }
        );
        // Exactly at the limit is fine.
        big.truncate(MAX_IMAGE_BYTES);
        assert!(to_data_url(&big).is_ok());
        // Not an image and too large: the size is what is reported.
        let junk = vec![b'x'; MAX_IMAGE_BYTES + 10];
        assert!(matches!(
            to_data_url(&junk),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn too_large_message_in_mib() {
        let err = ImageError::TooLarge {
            bytes: (25.3 * MIB) as usize,
            max: MAX_IMAGE_BYTES,
        };
        assert_eq!(err.to_string(), "image is 25.3 MiB, over the 20 MiB limit");
        let err = ImageError::TooLarge {
            bytes: 21 * 1024 * 1024,
            max: MAX_IMAGE_BYTES,
        };
        assert_eq!(err.to_string(), "image is 21 MiB, over the 20 MiB limit");
    }

    #[test]
    fn unknown_type_shows_first_eight_bytes_in_hex() {
        let err = to_data_url(b"<!DOCTYPE html><html>").unwrap_err();
        assert_eq!(
            err,
            ImageError::UnknownType {
                first_bytes: "3c 21 44 4f 43 54 59 50".to_owned()
            }
        );
        assert!(err.to_string().contains("3c 21 44 4f 43 54 59 50"));
        assert!(err.to_string().contains("PNG, JPEG, WEBP or GIF"));
        // Fewer than 8 bytes.
        assert_eq!(
            to_data_url(&[0x00, 0xAB]).unwrap_err(),
            ImageError::UnknownType {
                first_bytes: "00 ab".to_owned()
            }
        );
    }
}
