//! A message's template: its words with the parts that vary from row to row
//! (paths and file names, numbers, ids, quoted text) set apart, so that errors
//! which differ only there are counted as one group. A thousand rows of
//! `images/digit-0001.png resolves to /elsewhere/images/digit-0001.png, outside
//! the data folder /data` are one group, `<path> resolves to <path>, outside the
//! data folder /data`, and each row's paths are its detail.
//!
//! A part becomes a placeholder only where the messages of a group differ
//! ([`Gathered::message`]): a group whose messages are all the same shows that
//! message as it was written.

/// What a varying part of a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Slot {
    /// A path, URL or file name: `images/a.png`, `/data/x`, `a.png`.
    Path,
    /// A number, with its unit or separators: `429`, `1.5`, `60s`, a timestamp.
    Number,
    /// A long token of letters and digits: a request id, a hash.
    Id,
    /// Text between double quotes or backticks (the quotes stay in the template).
    Quoted,
}

impl Slot {
    /// How a part that varies is shown in a group's message.
    pub fn placeholder(self) -> &'static str {
        match self {
            Slot::Path => "<path>",
            Slot::Number => "<number>",
            Slot::Id => "<id>",
            Slot::Quoted => "…",
        }
    }

    fn marker(self) -> char {
        match self {
            Slot::Path => 'p',
            Slot::Number => 'n',
            Slot::Id => 'i',
            Slot::Quoted => 'q',
        }
    }
}

/// A message split into fixed text and varying parts: `fixed[0] values[0]
/// fixed[1] values[1] ... fixed[n]` is the message, byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    fixed: Vec<String>,
    slots: Vec<Slot>,
    values: Vec<String>,
}

/// Characters that may open a word without being part of it: `(images/a.png`.
const OPENERS: &[char] = &['(', '[', '{', '<', '\''];
/// Characters that may close a word without being part of it: `a.png),`.
const CLOSERS: &[char] = &[',', ';', ':', '.', ')', ']', '}', '>', '!', '?', '\''];

impl Template {
    /// The template of `message`.
    pub fn of(message: &str) -> Template {
        let mut t = Template {
            fixed: vec![String::new()],
            slots: Vec::new(),
            values: Vec::new(),
        };
        let mut i = 0;
        let mut word_start = true;
        while let Some(c) = message[i..].chars().next() {
            if c == '"' || c == '`' {
                if let Some(len) = message[i + 1..].find(c) {
                    t.text(c);
                    t.slot(Slot::Quoted, &message[i + 1..i + 1 + len]);
                    t.text(c);
                    i += len + 2;
                    word_start = false;
                    continue;
                }
            }
            if word_start && !c.is_whitespace() && !OPENERS.contains(&c) {
                let end = message[i..]
                    .find(|ch: char| ch.is_whitespace() || ch == '"' || ch == '`')
                    .map_or(message.len(), |e| i + e);
                let word = &message[i..end];
                let core = word.trim_end_matches(CLOSERS);
                match classify(core) {
                    Some(slot) => {
                        t.slot(slot, core);
                        t.push_str(&word[core.len()..]);
                    }
                    None => t.push_str(word),
                }
                i = end;
                word_start = false;
                continue;
            }
            t.text(c);
            word_start = c.is_whitespace() || OPENERS.contains(&c);
            i += c.len_utf8();
        }
        t
    }

    fn text(&mut self, c: char) {
        self.fixed
            .last_mut()
            .expect("one fixed part at least")
            .push(c);
    }

    fn push_str(&mut self, s: &str) {
        self.fixed
            .last_mut()
            .expect("one fixed part at least")
            .push_str(s);
    }

    fn slot(&mut self, slot: Slot, value: &str) {
        self.slots.push(slot);
        self.values.push(value.to_string());
        self.fixed.push(String::new());
    }

    /// What messages of one group share: the fixed text with a marker for each
    /// kind of varying part. Two messages with the same key differ at most in
    /// their varying parts.
    pub fn key(&self) -> String {
        let mut key = String::with_capacity(self.fixed.iter().map(String::len).sum::<usize>() + 4);
        for (i, fixed) in self.fixed.iter().enumerate() {
            key.push_str(fixed);
            if let Some(slot) = self.slots.get(i) {
                key.push('\0');
                key.push(slot.marker());
                key.push('\0');
            }
        }
        key
    }

    /// The varying parts, in order.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// The varying parts, taken.
    pub fn into_values(self) -> Vec<String> {
        self.values
    }
}

/// The kind of varying part `word` is, if it is one.
fn classify(word: &str) -> Option<Slot> {
    let unsigned = word.strip_prefix(['-', '+']).unwrap_or(word);
    if unsigned.starts_with(|c: char| c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".,:-+_".contains(c))
    {
        return Some(Slot::Number);
    }
    if word.len() > 1 && word.contains(['/', '\\']) {
        return Some(Slot::Path);
    }
    if is_file_name(word) {
        return Some(Slot::Path);
    }
    let id_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if word.len() >= 8
        && word.chars().all(id_char)
        && word.contains(|c: char| c.is_ascii_digit())
        && word.contains(|c: char| c.is_ascii_alphabetic())
    {
        return Some(Slot::Id);
    }
    None
}

/// `digit-0001.png`, `api.example.com`: a name, a dot, and an extension of 2 to 5
/// letters and digits starting with a letter.
fn is_file_name(word: &str) -> bool {
    let Some((stem, ext)) = word.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && (2..=5).contains(&ext.len())
        && ext.starts_with(|c: char| c.is_ascii_alphabetic())
        && ext.chars().all(|c| c.is_ascii_alphanumeric())
        && stem
            .chars()
            .all(|c| c.is_alphanumeric() || "-_.~+@".contains(c))
}

/// The messages of one template, gathered: the first one, and which of its parts
/// differ in any other.
#[derive(Clone, Debug)]
pub struct Gathered {
    first: Template,
    varies: Vec<bool>,
}

impl Gathered {
    /// A group's first message.
    pub fn new(first: Template) -> Gathered {
        Gathered {
            varies: vec![false; first.values.len()],
            first,
        }
    }

    /// One more message of the same key ([`Template::key`]).
    pub fn add(&mut self, values: &[String]) {
        for ((varies, first), value) in self.varies.iter_mut().zip(&self.first.values).zip(values) {
            *varies |= first != value;
        }
    }

    /// Whether the messages differ at all.
    pub fn varies(&self) -> bool {
        self.varies.contains(&true)
    }

    /// The group's message: the first one, with each part that differs among the
    /// messages shown as its placeholder (`<path>`, `<number>`, `<id>`, `"…"`); the
    /// first message itself when they are all the same.
    pub fn message(&self) -> String {
        let t = &self.first;
        let mut out = String::new();
        for (i, fixed) in t.fixed.iter().enumerate() {
            out.push_str(fixed);
            if let Some(value) = t.values.get(i) {
                out.push_str(if self.varies[i] {
                    t.slots[i].placeholder()
                } else {
                    value
                });
            }
        }
        out
    }

    /// One message's detail: its parts where the messages differ, joined by `, `
    /// (`images/a.png, /elsewhere/images/a.png`); empty when they do not differ.
    pub fn detail(&self, values: &[String]) -> String {
        values
            .iter()
            .zip(&self.varies)
            .filter(|(_, &varies)| varies)
            .map(|(v, _)| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(message: &str) -> (String, Vec<(Slot, String)>) {
        let t = Template::of(message);
        let slots = t
            .slots
            .iter()
            .copied()
            .zip(t.values.iter().cloned())
            .collect();
        (t.key().replace('\0', "|"), slots)
    }

    #[test]
    fn paths_numbers_ids_and_quoted_text_are_the_varying_parts() {
        let (key, slots) = parts(
            "images/digit-0001.png resolves to /tmp/x/images/digit-0001.png, outside the data folder /data; pass --allow-outside-data-dir to allow it",
        );
        assert_eq!(
            key,
            "|p| resolves to |p|, outside the data folder |p|; pass --allow-outside-data-dir to allow it"
        );
        assert_eq!(
            slots,
            [
                (Slot::Path, "images/digit-0001.png".into()),
                (Slot::Path, "/tmp/x/images/digit-0001.png".into()),
                (Slot::Path, "/data".into()),
            ]
        );
        let (key, slots) = parts("missing label (column \"label\")");
        assert_eq!(key, "missing label (column \"|q|\")");
        assert_eq!(slots, [(Slot::Quoted, "label".into())]);
        let (key, _) = parts("HTTP 500: upstream said `busy` (request req_8f7a6b5c4d)");
        assert_eq!(key, "HTTP |n|: upstream said `|q|` (request |i|)");
        let (key, _) = parts("a.png is 12.5 MiB, over the 20 MiB limit");
        assert_eq!(key, "|p| is |n| MiB, over the |n| MiB limit");
        // Words, hyphenated words, "e.g." and a lone slash stay text.
        let (key, slots) = parts("could not connect: connection refused, e.g. / retry-after");
        assert!(slots.is_empty(), "{slots:?}");
        assert_eq!(
            key,
            "could not connect: connection refused, e.g. / retry-after"
        );
    }

    #[test]
    fn only_the_parts_that_differ_become_placeholders() {
        let messages = [
            "images/a.png resolves to /x/images/a.png, outside the data folder /data",
            "images/b.png resolves to /x/images/b.png, outside the data folder /data",
        ];
        let templates: Vec<Template> = messages.iter().map(|m| Template::of(m)).collect();
        assert_eq!(templates[0].key(), templates[1].key());
        let mut group = Gathered::new(templates[0].clone());
        assert!(!group.varies());
        assert_eq!(group.message(), messages[0]);
        group.add(templates[1].values());
        assert!(group.varies());
        assert_eq!(
            group.message(),
            "<path> resolves to <path>, outside the data folder /data"
        );
        assert_eq!(
            group.detail(templates[1].values()),
            "images/b.png, /x/images/b.png"
        );
        let mut quoted = Gathered::new(Template::of("answer \"cow\" is not a label"));
        quoted.add(Template::of("answer \"owl\" is not a label").values());
        assert_eq!(quoted.message(), "answer \"…\" is not a label");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// The parts put back together are the message, byte for byte, and a
            /// group of one message shows it as it is.
            #[test]
            fn a_template_is_its_message(message in "[ -~éß/\\\\\"`()\\[\\]0-9a-z.]{0,60}") {
                let t = Template::of(&message);
                prop_assert_eq!(t.fixed.len(), t.values.len() + 1);
                prop_assert_eq!(Gathered::new(t).message(), message);
            }
        }
    }
}
