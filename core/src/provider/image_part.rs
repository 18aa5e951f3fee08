//! The image as the providers whose APIs take it apart want it: a remote URL (with
//! the MIME type its name suggests), or the media type and base64 data of a `data:`
//! URL. OpenAI-style providers take the URL string whole and never need this.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// An image URL split the way Anthropic and Gemini send images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ImagePart<'a> {
    /// An `http(s)://` (or any non-`data:`) URL, passed by reference.
    Url {
        /// The URL exactly as given.
        url: &'a str,
        /// The type its file name suggests ([`mime_from_name`]).
        mime: &'a str,
    },
    /// The bytes of a `data:` URL.
    Inline {
        /// The media type, e.g. `image/png` (`application/octet-stream` when the URL
        /// names none).
        mime: &'a str,
        /// Standard base64 of the bytes (a URL that was not base64 is encoded).
        data: Cow<'a, str>,
    },
}

impl<'a> ImagePart<'a> {
    /// Splits `url`: `data:[<mime>][;param...][;base64],<payload>` becomes
    /// [`ImagePart::Inline`]; anything else (including a `data:` URL without a comma,
    /// which no endpoint can read either) is a [`ImagePart::Url`].
    pub(super) fn of(url: &'a str) -> ImagePart<'a> {
        let remote = ImagePart::Url {
            url,
            mime: mime_from_name(url),
        };
        let is_data = url
            .get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"));
        if !is_data {
            return remote;
        }
        let Some((meta, payload)) = url[5..].split_once(',') else {
            return remote;
        };
        let mut params = meta.split(';');
        let mime = params.next().unwrap_or("").trim();
        let base64 = params.any(|p| p.trim().eq_ignore_ascii_case("base64"));
        let data = if base64 {
            Cow::Borrowed(payload)
        } else {
            Cow::Owned(STANDARD.encode(percent_decode(payload)))
        };
        ImagePart::Inline {
            mime: if mime.is_empty() {
                "application/octet-stream"
            } else {
                mime
            },
            data,
        }
    }
}

/// The image type a URL's file name suggests (its last path segment's extension,
/// ignoring any query or fragment); `image/jpeg` when it suggests none, the most
/// common type of photos on the web.
pub(super) fn mime_from_name(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    match ext.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => "image/jpeg",
    }
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// `s` made safe as one URL path segment: every byte but the unreserved ones
/// (`A-Z a-z 0-9 - . _ ~`) percent-encoded, `/` kept when `keep_slash`.
pub(super) fn encode_path(s: &str, keep_slash: bool) -> Cow<'_, str> {
    let safe =
        |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/');
    if s.bytes().all(safe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if safe(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_split_into_type_and_base64() {
        assert_eq!(
            ImagePart::of("data:image/png;base64,iVBORw0KGgo="),
            ImagePart::Inline {
                mime: "image/png",
                data: Cow::Borrowed("iVBORw0KGgo=")
            }
        );
        // Case of the scheme and of `base64`, and extra parameters, do not matter.
        assert_eq!(
            ImagePart::of("DATA:image/jpeg;name=a.jpg;BASE64,/9j/4AAQ"),
            ImagePart::Inline {
                mime: "image/jpeg",
                data: Cow::Borrowed("/9j/4AAQ")
            }
        );
        // Not base64: percent-decoded, then encoded.
        assert_eq!(
            ImagePart::of("data:image/svg+xml,%3Csvg%2F%3E"),
            ImagePart::Inline {
                mime: "image/svg+xml",
                data: Cow::Owned(STANDARD.encode("<svg/>"))
            }
        );
        assert_eq!(
            ImagePart::of("data:,a%zz%4"),
            ImagePart::Inline {
                mime: "application/octet-stream",
                data: Cow::Owned(STANDARD.encode("a%zz%4"))
            }
        );
        // No comma: not a readable data URL, passed on as a URL.
        assert!(matches!(
            ImagePart::of("data:image/png;base64"),
            ImagePart::Url { .. }
        ));
    }

    #[test]
    fn remote_urls_keep_their_text_and_guess_a_type_from_the_name() {
        assert_eq!(
            ImagePart::of("https://x.test/a/b.PNG?sig=1#f"),
            ImagePart::Url {
                url: "https://x.test/a/b.PNG?sig=1#f",
                mime: "image/png"
            }
        );
        assert_eq!(mime_from_name("https://x.test/cat.webp"), "image/webp");
        assert_eq!(mime_from_name("https://x.test/cat.gif"), "image/gif");
        assert_eq!(mime_from_name("https://x.test/cat.jpeg"), "image/jpeg");
        assert_eq!(mime_from_name("https://x.test/cat"), "image/jpeg");
        assert_eq!(mime_from_name("https://x.test.png/cat"), "image/jpeg");
        assert_eq!(mime_from_name(""), "image/jpeg");
    }

    #[test]
    fn path_encoding() {
        assert_eq!(encode_path("gemini-2.5-flash", false), "gemini-2.5-flash");
        assert_eq!(encode_path("a b/c?d", false), "a%20b%2Fc%3Fd");
        assert_eq!(encode_path("tunedModels/x y", true), "tunedModels/x%20y");
        assert_eq!(encode_path("é", false), "%C3%A9");
    }
}
