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

/// The shortest run of a credential's characters that is redacted wherever it
/// stands in a text (a cut echo such as OpenAI's "Incorrect API key provided:
/// sk-proj-abc…", or a slice from the middle of a key). A credential shorter than
/// this is not searched for in texts at all: `x`, `ollama` or `sk-local`-style
/// dummy keys for local servers would otherwise be cut out of every answer that
/// happens to contain those letters. Such a key is still never written by the
/// run itself.
pub const MIN_SECRET: usize = 8;

/// The credentials of a run, and the one function that removes them from a text.
/// Never serialized; its `Debug` shows how many it holds, not what.
///
/// Redaction changes what is written and shown, never what is judged: the engine
/// reads an answer as it came and redacts the texts it keeps afterwards.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Credentials of at least [`MIN_SECRET`] bytes, longest first.
    secrets: Vec<Secret>,
    /// Credentials a URL carries, with the text they stand in there (`:pa55@`,
    /// `api-key=K3Y`): found in that context however short they are.
    in_urls: Vec<UrlSecret>,
}

/// A credential and an index of its [`MIN_SECRET`]-byte windows.
#[derive(Clone)]
struct Secret {
    text: String,
    /// Every window of `MIN_SECRET` bytes of `text`, with where it starts there.
    windows: std::collections::HashMap<[u8; MIN_SECRET], Vec<usize>>,
}

/// `before` + secret + a character that ends it (`@` for userinfo, any character
/// that cannot continue a query value for a query parameter).
#[derive(Clone)]
struct UrlSecret {
    before: String,
    secret: String,
    ends_at: fn(Option<u8>) -> bool,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redactor({} secrets)",
            self.secrets.len() + self.in_urls.len()
        )
    }
}

impl Secret {
    fn new(text: &str) -> Secret {
        let mut windows = std::collections::HashMap::<_, Vec<usize>>::new();
        for (at, window) in text.as_bytes().windows(MIN_SECRET).enumerate() {
            let mut key = [0; MIN_SECRET];
            key.copy_from_slice(window);
            windows.entry(key).or_default().push(at);
        }
        Secret {
            text: text.to_owned(),
            windows,
        }
    }

    /// The byte ranges of `text` that are runs of at least [`MIN_SECRET`] bytes
    /// of this secret, wherever in it they start, each as long as it goes.
    fn runs(&self, text: &str) -> Vec<(usize, usize)> {
        let (hay, key) = (text.as_bytes(), self.text.as_bytes());
        let mut runs = Vec::new();
        let mut at = 0;
        while at + MIN_SECRET <= hay.len() {
            let mut window = [0; MIN_SECRET];
            window.copy_from_slice(&hay[at..at + MIN_SECRET]);
            let Some(starts) = self.windows.get(&window) else {
                at += 1;
                continue;
            };
            let longest = starts
                .iter()
                .map(|&from| {
                    let mut len = MIN_SECRET;
                    while at + len < hay.len()
                        && from + len < key.len()
                        && hay[at + len] == key[from + len]
                    {
                        len += 1;
                    }
                    len
                })
                .max()
                .unwrap_or(MIN_SECRET);
            runs.push((
                floor_char_boundary(text, at),
                ceil_char_boundary(text, at + longest),
            ));
            at += longest;
        }
        runs
    }
}

impl Redactor {
    /// Adds a credential. Blank ones, and ones shorter than [`MIN_SECRET`] bytes,
    /// are not searched for (see there); of the others, any run of 8 or more of
    /// their characters is redacted, wherever it starts (so the bearer form, a cut
    /// echo and a slice from the middle too).
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_SECRET && !self.secrets.iter().any(|s| s.text == secret) {
            self.secrets.push(Secret::new(secret));
            // Longest first: a key that contains another is taken whole.
            self.secrets
                .sort_by_key(|s| std::cmp::Reverse(s.text.len()));
        }
    }

    /// Adds the credentials a URL carries (see [`url_secrets`]): in the URL's own
    /// form (`user:pa55@`, `api-key=K3Y`) whatever their length, and anywhere when
    /// they are long enough to be searched for alone.
    pub fn add_url(&mut self, url: &str) {
        let parts = split_url(url);
        if let Some(userinfo) = parts.userinfo {
            let (before, secret) = match userinfo.split_once(':') {
                Some((user, password)) => (format!("{user}:"), password),
                None => (String::new(), userinfo),
            };
            self.add_in_url(before, secret, |next| next == Some(b'@'));
        }
        for pair in parts.query.unwrap_or("").split('&') {
            if let Some((name, value)) = pair.split_once('=') {
                if is_credential_name(name) {
                    self.add_in_url(format!("{name}="), value, |next| {
                        !next.is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~%+".contains(&b))
                    });
                }
            }
        }
    }

    fn add_in_url(&mut self, before: String, secret: &str, ends_at: fn(Option<u8>) -> bool) {
        if secret.is_empty() {
            return;
        }
        self.add(secret);
        self.in_urls.push(UrlSecret {
            before,
            secret: secret.to_owned(),
            ends_at,
        });
    }

    /// Whether it holds no credential.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.in_urls.is_empty()
    }

    /// `text` with every echo of a credential replaced by [`REDACTED`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.secrets {
            if let Some(replaced) = replace_ranges(&out, &secret.runs(&out)) {
                out = Cow::Owned(replaced);
            }
        }
        for url in &self.in_urls {
            if let Some(replaced) = replace_ranges(&out, &url.ranges(&out)) {
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

impl UrlSecret {
    fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        let pattern = format!("{}{}", self.before, self.secret);
        text.match_indices(&pattern)
            .filter(|(at, _)| (self.ends_at)(text.as_bytes().get(at + pattern.len()).copied()))
            .map(|(at, _)| (at + self.before.len(), at + pattern.len()))
            .collect()
    }
}

/// `text` with each of the (ordered, disjoint) byte `ranges` replaced by
/// [`REDACTED`]; `None` when there are none.
fn replace_ranges(text: &str, ranges: &[(usize, usize)]) -> Option<String> {
    if ranges.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for &(from, to) in ranges {
        out.push_str(&text[copied..from]);
        out.push_str(REDACTED);
        copied = to;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
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
        r.add("  ");
        assert_eq!(r.redact("x pässwörd-lo y"), "x [REDACTED] y");
        assert_eq!(r.redact("pässwörd-lo€"), "[REDACTED]€");
        // A slice from the middle that starts inside a character.
        assert_eq!(r.redact("=ässwörd-long!"), "=[REDACTED]!");
        assert!(Redactor::default().redact("anything").eq("anything"));
    }

    /// A dummy key for a local server (`x`, `ollama`, `sk-local`) is not searched
    /// for: with `x`, "box" became `bo[REDACTED]` and the answer no longer matched
    /// its label.
    #[test]
    fn keys_shorter_than_eight_characters_are_not_searched_for() {
        for dummy in ["x", "ollama", "sk-loca"] {
            let mut r = Redactor::default();
            r.add(dummy);
            assert!(r.is_empty(), "{dummy}");
            let answer = format!(r#"{{"label":"box","echo":"{dummy}"}}"#);
            assert!(matches!(r.redact(&answer), Cow::Borrowed(_)), "{dummy}");
        }
        let mut r = Redactor::default();
        r.add("sk-local");
        assert_eq!(r.redact("key sk-local!"), "key [REDACTED]!");
    }

    /// Any run of 8 or more characters of the key is redacted wherever it starts:
    /// a 12-character slice from the middle of a long key was written as it came.
    #[test]
    fn a_slice_from_the_middle_of_the_key_is_redacted() {
        let r = redactor();
        let middle = &KEY[7..19];
        assert_eq!(middle.len(), 12);
        assert_eq!(
            r.redact(&format!("you sent ...{middle}... which is wrong")),
            "you sent ...[REDACTED]... which is wrong"
        );
        // The last eight, and two slices side by side.
        assert_eq!(
            r.redact(&format!("<{}>", &KEY[KEY.len() - 8..])),
            "<[REDACTED]>"
        );
        assert_eq!(
            r.redact(&format!("{}{}", &KEY[3..12], &KEY[1..10])),
            "[REDACTED][REDACTED]"
        );
        // Seven characters from the middle are not a credential.
        assert!(matches!(
            r.redact(&format!("Z{}Z", &KEY[5..12])),
            Cow::Borrowed(_)
        ));
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
