//! The one request builder of every host: a provider's body serialized once per
//! label set with marks where the image goes, and filled in per request.

use crate::http::HttpRequest;
use crate::input::LabelSet;

use super::image_part::ImagePart;
use super::{
    anthropic, azure, gemini, http_json, is_google_host, openai, Credential, OutputFormat,
    Provider, ANTHROPIC_VERSION,
};

/// What one request is about: what a provider's body builder needs.
#[derive(Clone, Copy, Debug)]
pub struct RequestInput<'a> {
    /// The image: an `http(s)://` URL or a `data:` URL, passed to the endpoint as it is.
    pub image_url: &'a str,
    /// The labels the model must choose from.
    pub labels: &'a LabelSet,
    /// 1-based attempt number (1 = first try, 2 = first retry, ...).
    pub attempt: u32,
    /// The item's id from the CSV, when it has one (sent by the generic JSON provider only).
    pub item_id: Option<&'a str>,
}

impl Provider {
    /// The requests asking the endpoint to classify one image each, for one label
    /// set: the one request builder of every host.
    pub fn request_template(&self, labels: &LabelSet) -> RequestTemplate {
        self.request_template_scored(labels, false)
    }

    /// [`Provider::request_template`] that can also ask for log-probabilities
    /// ([`RequestTemplate::build_for`] with `confidence` set),
    /// when `confidence` is set and the provider [gives
    /// them](Provider::gives_logprobs).
    pub fn request_template_scored(&self, labels: &LabelSet, confidence: bool) -> RequestTemplate {
        let bodies = self.template_bodies(labels, false);
        let scored = if confidence && self.gives_logprobs() {
            self.template_bodies(labels, true)
        } else {
            Vec::new()
        };
        let extra_headers = match self {
            Provider::Anthropic(_) => vec![("anthropic-version", ANTHROPIC_VERSION)],
            _ => Vec::new(),
        };
        let url = self.endpoint_url();
        // Google's CORS preflight refuses headers its own clients do not send (see
        // `browser_access`); the attempt header is only information to an endpoint.
        let retry_count_header = !matches!(self, Provider::Gemini(_) if is_google_host(&url));
        RequestTemplate {
            url,
            credential: self.credential(),
            extra_headers,
            retry_count_header,
            bodies,
            scored,
        }
    }

    fn template_bodies(&self, labels: &LabelSet, logprobs: bool) -> Vec<TemplateBody> {
        let whole = |format| TemplateBody::Whole {
            provider: self.clone(),
            labels: labels.clone(),
            format,
            logprobs,
        };
        let url_form = ImagePart::Url {
            url: IMAGE_MARK,
            mime: URL_MIME_MARK,
        };
        let inline_form = ImagePart::Inline {
            mime: MIME_MARK,
            data: DATA_MARK.into(),
        };
        let spliced = |build: &dyn Fn(&ImagePart) -> String| {
            Some((
                Spliced::of(&build(&url_form))?,
                Some(Spliced::of(&build(&inline_form))?),
            ))
        };
        let forms = match self {
            Provider::OpenAi(_) | Provider::Azure(_) => {
                let marked = self.whole_body(
                    &RequestInput {
                        image_url: IMAGE_MARK,
                        labels,
                        attempt: 1,
                        item_id: None,
                    },
                    logprobs,
                );
                Spliced::of(&marked).map(|s| (s, None))
            }
            Provider::Anthropic(cfg) => {
                spliced(&|image: &ImagePart| anthropic::build_body(cfg, labels, image))
            }
            Provider::Gemini(cfg) => {
                spliced(&|image: &ImagePart| gemini::build_body(cfg, labels, image, logprobs))
            }
            Provider::HttpJson(_) => None,
        };
        let mut bodies = vec![match forms {
            Some((url, inline)) => TemplateBody::Spliced { url, inline },
            None => whole(OutputFormat::JsonSchema),
        }];
        if self.falls_back() {
            // The other formats, made from the first's marked text.
            for format in &OutputFormat::ALL[1..] {
                let marked = self.whole_body_as(
                    &RequestInput {
                        image_url: IMAGE_MARK,
                        labels,
                        attempt: 1,
                        item_id: None,
                    },
                    *format,
                    logprobs,
                );
                bodies.push(match (&bodies[0], Spliced::of(&marked)) {
                    (TemplateBody::Spliced { .. }, Some(url)) => {
                        TemplateBody::Spliced { url, inline: None }
                    }
                    _ => whole(*format),
                });
            }
        }
        bodies
    }

    /// [`Provider::whole_body`] asking for `format` (for providers that
    /// [fall back](Provider::falls_back); the others always ask as they do).
    pub(super) fn whole_body_as(
        &self,
        input: &RequestInput,
        format: OutputFormat,
        logprobs: bool,
    ) -> String {
        let body = self.whole_body(input, logprobs);
        if format == OutputFormat::JsonSchema || !self.falls_back() {
            return body;
        }
        let mut value: serde_json::Value =
            serde_json::from_str(&body).expect("a body the provider built is JSON");
        let object = value.as_object_mut().expect("a chat request is an object");
        match format {
            OutputFormat::JsonObject => {
                object.insert(
                    "response_format".to_owned(),
                    serde_json::json!({ "type": "json_object" }),
                );
            }
            _ => {
                object.remove("response_format");
            }
        }
        value.to_string()
    }

    /// The body of one request, serialized whole (the template's slow way).
    pub(super) fn whole_body(&self, input: &RequestInput, logprobs: bool) -> String {
        match self {
            Provider::OpenAi(cfg) => openai::build_body(cfg, input, logprobs),
            Provider::Azure(cfg) => openai::build_body(&azure::as_openai(cfg), input, logprobs),
            Provider::HttpJson(_) => http_json::build_body(input),
            Provider::Anthropic(cfg) => {
                anthropic::build_body(cfg, input.labels, &ImagePart::of(input.image_url))
            }
            Provider::Gemini(cfg) => {
                gemini::build_body(cfg, input.labels, &ImagePart::of(input.image_url), logprobs)
            }
        }
    }
}

/// Stands for the image URL while the rest of a body is serialized once.
pub(super) const IMAGE_MARK: &str = "\u{1}shadow-batch image\u{1}";
/// Stands for the MIME type a remote image's name suggests.
const URL_MIME_MARK: &str = "\u{1}shadow-batch url mime\u{1}";
/// Stands for the media type of a `data:` URL.
const MIME_MARK: &str = "\u{1}shadow-batch mime\u{1}";
/// Stands for the base64 data of a `data:` URL.
pub(super) const DATA_MARK: &str = "\u{1}shadow-batch data\u{1}";

/// What fills a gap of a [`Spliced`] body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The image URL, whole.
    Url,
    /// The MIME type a remote URL's name suggests.
    UrlMime,
    /// The media type of a `data:` URL.
    Mime,
    /// The base64 data of a `data:` URL.
    Data,
}

const SLOTS: [(&str, Slot); 4] = [
    (IMAGE_MARK, Slot::Url),
    (URL_MIME_MARK, Slot::UrlMime),
    (MIME_MARK, Slot::Mime),
    (DATA_MARK, Slot::Data),
];

/// A body's JSON text cut at the places of the image's parts: `pieces[0] slot[0]
/// pieces[1] ... slot[n-1] pieces[n]`, each slot a JSON string.
#[derive(Clone, Debug)]
pub(super) struct Spliced {
    pieces: Vec<String>,
    slots: Vec<Slot>,
}

impl Spliced {
    /// Cuts a body serialized with the marks in place of the image's parts. `None`
    /// when a mark occurs more than once (a prompt or label holding a mark itself),
    /// or none does: the body is then serialized whole for each request.
    fn of(marked: &str) -> Option<Spliced> {
        let mut found = Vec::new();
        for (mark, slot) in SLOTS {
            let quoted = serde_json::to_string(mark).expect("a string serializes");
            let mut at = marked.match_indices(&quoted);
            if let Some((i, _)) = at.next() {
                if at.next().is_some() {
                    return None;
                }
                found.push((i, quoted.len(), slot));
            }
        }
        if found.is_empty() {
            return None;
        }
        found.sort_unstable_by_key(|&(i, _, _)| i);
        let mut pieces = Vec::with_capacity(found.len() + 1);
        let mut slots = Vec::with_capacity(found.len());
        let mut from = 0;
        for (i, len, slot) in found {
            pieces.push(marked[from..i].to_owned());
            slots.push(slot);
            from = i + len;
        }
        pieces.push(marked[from..].to_owned());
        Some(Spliced { pieces, slots })
    }

    fn fill(&self, image_url: &str, image: Option<&ImagePart>) -> String {
        let value = |slot: Slot| -> &str {
            match (slot, image) {
                (Slot::Url, _) => image_url,
                (Slot::UrlMime, Some(ImagePart::Url { mime, .. })) => mime,
                (Slot::Mime, Some(ImagePart::Inline { mime, .. })) => mime,
                (Slot::Data, Some(ImagePart::Inline { data, .. })) => data,
                // A slot of the other form: the form is chosen by the image's kind,
                // so this never happens.
                _ => "",
            }
        };
        let size = self.pieces.iter().map(String::len).sum::<usize>()
            + image_url.len()
            + 2 * self.slots.len();
        let mut body = String::with_capacity(size + 16);
        for (piece, slot) in self.pieces.iter().zip(&self.slots) {
            body.push_str(piece);
            push_json_string(&mut body, value(*slot));
        }
        body.push_str(self.pieces.last().expect("one more piece than slots"));
        body
    }
}

/// Appends `s` as a JSON string, copying it as it is when it needs no escape.
fn push_json_string(body: &mut String, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        body.push_str(&serde_json::to_string(s).expect("a string serializes"));
    } else {
        body.push('"');
        body.push_str(s);
        body.push('"');
    }
}

/// The requests of one run, with everything but the image, the attempt and the item
/// id serialized once (`Provider::request_template`): at thousands of requests a
/// second, writing the prompt and the label schema again for each image showed in
/// profiles.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    url: String,
    credential: Credential,
    extra_headers: Vec<(&'static str, &'static str)>,
    /// Whether requests carry `x-stainless-retry-count` (not to Google's hosts).
    retry_count_header: bool,
    /// By [`OutputFormat`]: one body for providers that do not fall back, three for
    /// those that do.
    pub(super) bodies: Vec<TemplateBody>,
    /// The same asking for log-probabilities; empty when the run does not ask
    /// for them or the provider gives none.
    scored: Vec<TemplateBody>,
}

#[derive(Clone, Debug)]
pub(super) enum TemplateBody {
    /// The JSON text around the image's parts: one form for remote URLs, one for
    /// `data:` URLs (`None` for providers that take every URL whole).
    Spliced {
        url: Spliced,
        inline: Option<Spliced>,
    },
    /// Serialized whole for each request.
    Whole {
        provider: Provider,
        labels: LabelSet,
        format: OutputFormat,
        /// Asking for log-probabilities.
        logprobs: bool,
    },
}

impl RequestTemplate {
    /// The HTTP request asking the endpoint to classify one image.
    ///
    /// Headers are `content-type: application/json`, `x-stainless-retry-count:
    /// {attempt - 1}` (the header the OpenAI and Anthropic SDKs send; the mock reads
    /// the attempt from it; left out of requests to Google's hosts, whose CORS
    /// preflight refuses it: see [`Provider::browser_access`]) and the provider's own
    /// (`anthropic-version`). There is never a credential header: the host adds the
    /// key at the last moment, as [`RequestTemplate::credential_header`] says.
    pub fn build(&self, image_url: &str, attempt: u32, item_id: Option<&str>) -> HttpRequest {
        self.build_as(image_url, attempt, item_id, OutputFormat::JsonSchema)
    }

    /// [`RequestTemplate::build`] asking for the answer in `format`, as a
    /// [`crate::SendOrder`] says (providers that do not [fall
    /// back](Provider::falls_back) ignore it).
    pub fn build_as(
        &self,
        image_url: &str,
        attempt: u32,
        item_id: Option<&str>,
        format: OutputFormat,
    ) -> HttpRequest {
        self.build_from(&self.bodies, image_url, attempt, item_id, format)
    }

    /// The request a send order asks for (the host passes the order's
    /// `attempt`, `format` and `confidence`): [`RequestTemplate::build_as`],
    /// asking for log-probabilities too when `confidence` is set and the template
    /// was made to ask for them ([`Provider::request_template_scored`]).
    pub fn build_for(
        &self,
        image_url: &str,
        attempt: u32,
        item_id: Option<&str>,
        format: OutputFormat,
        confidence: bool,
    ) -> HttpRequest {
        let bodies = if confidence && !self.scored.is_empty() {
            &self.scored
        } else {
            &self.bodies
        };
        self.build_from(bodies, image_url, attempt, item_id, format)
    }

    /// Whether requests can ask for log-probabilities.
    pub fn asks_confidence(&self) -> bool {
        !self.scored.is_empty()
    }

    fn build_from(
        &self,
        bodies: &[TemplateBody],
        image_url: &str,
        attempt: u32,
        item_id: Option<&str>,
        format: OutputFormat,
    ) -> HttpRequest {
        let body = &bodies[format.index().min(bodies.len() - 1)];
        let body = match body {
            TemplateBody::Spliced { url, inline: None } => url.fill(image_url, None),
            TemplateBody::Spliced {
                url,
                inline: Some(inline),
            } => {
                let part = ImagePart::of(image_url);
                match part {
                    ImagePart::Inline { .. } => inline.fill(image_url, Some(&part)),
                    ImagePart::Url { .. } => url.fill(image_url, Some(&part)),
                }
            }
            TemplateBody::Whole {
                provider,
                labels,
                format,
                logprobs,
            } => provider.whole_body_as(
                &RequestInput {
                    image_url,
                    labels,
                    attempt,
                    item_id,
                },
                *format,
                *logprobs,
            ),
        };
        let mut headers = Vec::with_capacity(2 + self.extra_headers.len());
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
        if self.retry_count_header {
            headers.push((
                "x-stainless-retry-count".to_owned(),
                attempt.saturating_sub(1).to_string(),
            ));
        }
        for (name, value) in &self.extra_headers {
            headers.push(((*name).to_owned(), (*value).to_owned()));
        }
        HttpRequest {
            method: "POST",
            url: self.url.clone(),
            headers,
            body,
        }
    }

    /// The header carrying `key` for this provider ([`Provider::credential_header`]).
    pub fn credential_header(&self, key: &str) -> (&'static str, String) {
        self.credential.header(key)
    }

    /// The URL every request is POSTed to ([`Provider::endpoint_url`]).
    pub fn url(&self) -> &str {
        &self.url
    }
}
