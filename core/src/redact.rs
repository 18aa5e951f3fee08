//! Keeping credentials out of everything a run writes or shows.
//!
//! Endpoints echo what they were sent: a 401 that quotes the key, a proxy whose
//! error repeats the URL with its `?api-key=`, a model that answers with the
//! bearer token. Every text that comes from an endpoint passes through one
//! [`Redactor`] before it reaches a report, the journal, a log line, the console or
//! the page; URLs are shown and saved in their [`url_for_display`] form.

use std::borrow::Cow;
use std::fmt;

/// What a credential is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// An echo of a credential this long is redacted even when it is cut short (as
/// OpenAI's "Incorrect API key provided: sk-proj-abc…" does).
const MIN_ECHO: usize = 8;

/// The credentials of a run, and the one function that removes them from a text.
/// Never serialized; its `Debug` shows how many it holds, not what.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// Adds a credential (blank ones are ignored). Its bearer form, and any run of
    /// its first 8 or more characters, are redacted too.
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if !secret.is_empty() && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
            // Longest first: a key that contains another is taken whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// Adds the credentials a URL carries (see [`url_secrets`]).
    pub fn add_url(&mut self, url: &str) {
        for secret in url_secrets(url) {
            self.add(&secret);
        }
    }

    /// Whether it holds no credential.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every echo of a credential replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if let Some(replaced) = redact_one(&out, secret) {
                out = Cow::Owned(replaced);
            }
        }
        out
    }

    /// Redacts `text` in place.
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(clean) = self.redact(text) {
            *text = clean;
        }
    }
}

/// Replaces each run of `secret`'s leading characters (at least `MIN_ECHO` bytes,
/// or the whole secret when shorter) found in `text`. `None` when there is none.
fn redact_one(text: &str, secret: &str) -> Option<String> {
    let probe_len = floor_char_boundary(secret, MIN_ECHO.min(secret.len()));
    let probe = &secret[..probe_len];
    let (hay, key) = (text.as_bytes(), secret.as_bytes());
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(at) = text[from..].find(probe).map(|i| from + i) {
        let mut end = at + probe_len;
        while end < hay.len() && end - at < key.len() && hay[end] == key[end - at] {
            end += 1;
        }
        let end = floor_char_boundary(text, end);
        out.push_str(&text[copied..at]);
        out.push_str(REDACTED);
        copied = end;
        from = end;
    }
    (copied > 0).then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Query parameter names whose values are credentials (matched as substrings of
/// the lowercased name).
const CREDENTIAL_NAMES: [&str; 8] = [
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "auth",
    "sig",
    "credential",
];

fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_NAMES.iter().any(|c| name.contains(c))
}

/// A URL's parts, found without a URL parser: `scheme://userinfo@rest?query#frag`.
struct UrlParts<'a> {
    /// Up to and including `://` (empty when there is none).
    scheme: &'a str,
    userinfo: Option<&'a str>,
    /// From the host to before `?`.
    rest: &'a str,
    query: Option<&'a str>,
    /// From `#` on (empty when there is none).
    fragment: &'a str,
}

fn split_url(url: &str) -> UrlParts<'_> {
    let (before_fragment, fragment) = url.find('#').map_or((url, ""), |i| url.split_at(i));
    let (scheme, after) = match before_fragment.find("://") {
        Some(i) => before_fragment.split_at(i + 3),
        None => ("", before_fragment),
    };
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    let (userinfo, after) = match after[..authority_end].rfind('@') {
        Some(at) if !scheme.is_empty() => (Some(&after[..at]), &after[at + 1..]),
        _ => (None, after),
    };
    let (rest, query) = match after.find('?') {
        Some(q) => (&after[..q], Some(&after[q + 1..])),
        None => (after, None),
    };
    UrlParts {
        scheme,
        userinfo,
        rest,
        query,
        fragment,
    }
}

/// The credentials a URL carries (for a [`Redactor`]): the password of its
/// userinfo (or the user name when it stands alone, as a token does), and the
/// values of credential-like query parameters.
pub fn url_secrets(url: &str) -> Vec<String> {
    let parts = split_url(url);
    let mut secrets = Vec::new();
    if let Some(userinfo) = parts.userinfo {
        let secret = userinfo
            .split_once(':')
            .map_or(userinfo, |(_, password)| password);
        if !secret.is_empty() {
            secrets.push(secret.to_owned());
        }
    }
    for pair in parts.query.unwrap_or("").split('&') {
        if let Some((name, value)) = pair.split_once('=') {
            if is_credential_name(name) && !value.is_empty() {
                secrets.push(value.to_owned());
            }
        }
    }
    secrets
}

/// A URL as it may be shown or saved: no user name or password, and the values of
/// credential-like query parameters replaced by [`REDACTED`].
pub fn url_for_display(url: &str) -> Cow<'_, str> {
    let parts = split_url(url);
    let query_has_secret = parts.query.is_some_and(|q| {
        q.split('&').any(|p| {
            p.split_once('=')
                .is_some_and(|(n, v)| is_credential_name(n) && !v.is_empty())
        })
    });
    if parts.userinfo.is_none() && !query_has_secret {
        return Cow::Borrowed(url);
    }
    let mut out = format!("{}{}", parts.scheme, parts.rest);
    if let Some(query) = parts.query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if is_credential_name(name) && !value.is_empty() => {
                    format!("{name}={REDACTED}")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out.push_str(parts.fragment);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-canary-0123456789abcdef";

    fn redactor() -> Redactor {
        let mut r = Redactor::default();
        r.add(KEY);
        r
    }

    #[test]
    fn the_key_its_bearer_form_and_cut_echoes_are_redacted() {
        let r = redactor();
        for (text, want) in [
            (
                format!("Incorrect API key provided: {KEY}."),
                "Incorrect API key provided: [REDACTED].",
            ),
            (
                format!("Authorization: Bearer {KEY}"),
                "Authorization: Bearer [REDACTED]",
            ),
            (
                "key sk-canary-012*****cdef is wrong".into(),
                "key [REDACTED]*****cdef is wrong",
            ),
            (format!("{KEY}{KEY}"), "[REDACTED][REDACTED]"),
            (format!("\"{KEY}x\""), "\"[REDACTED]x\""),
        ] {
            assert_eq!(r.redact(&text), want);
        }
        // Seven characters of it are not an echo.
        assert!(matches!(r.redact("sk-cana and more"), Cow::Borrowed(_)));
        assert_eq!(format!("{r:?}"), "Redactor(1 secrets)");
    }

    #[test]
    fn short_and_non_ascii_secrets_and_text() {
        let mut r = Redactor::default();
        r.add("pässwörd-long-enough");
        r.add("abc");
        r.add("  ");
        assert_eq!(r.redact("x pässwörd-lo y"), "x [REDACTED] y");
        assert_eq!(r.redact("abcabc ab"), "[REDACTED][REDACTED] ab");
        assert_eq!(r.redact("pässwörd-lo€"), "[REDACTED]€");
        assert!(Redactor::default().redact("anything").eq("anything"));
    }

    #[test]
    fn urls_lose_userinfo_and_credential_query_values() {
        let url = "http://user:pa55@host:8080/v1?api-key=K3Y&api-version=2024-10-21&x=1#frag";
        assert_eq!(
            url_for_display(url),
            "http://host:8080/v1?api-key=[REDACTED]&api-version=2024-10-21&x=1#frag"
        );
        assert_eq!(url_secrets(url), ["pa55", "K3Y"]);
        assert_eq!(url_secrets("https://ghp_token1234@h/x"), ["ghp_token1234"]);
        let plain = "https://api.openai.com/v1";
        assert!(matches!(url_for_display(plain), Cow::Borrowed(_)));
        assert!(url_secrets(plain).is_empty());
        assert_eq!(
            url_for_display("https://h/p?access_token=t&sig=s&code=c"),
            "https://h/p?access_token=[REDACTED]&sig=[REDACTED]&code=c"
        );
        // An @ in the path is not userinfo.
        assert_eq!(url_for_display("https://h/a@b"), "https://h/a@b");
        let mut r = Redactor::default();
        r.add_url(url);
        assert_eq!(
            r.redact(&format!("error sending request for url ({url})")),
            "error sending request for url (http://user:[REDACTED]@host:8080/v1?api-key=[REDACTED]&api-version=2024-10-21&x=1#frag)"
        );
    }
}
