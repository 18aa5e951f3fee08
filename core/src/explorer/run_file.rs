//! Reading a run's summary or progress file as it streams by: the fields the
//! explorer shows, the per-row error list skipped unread, the batch reports folded.

use serde::Serialize;
use serde_json::Value;

use super::batches::Batches;
use super::ExplorerError;

/// How a run file is parsed: which it is, and the fields it must have.
#[derive(Clone, Copy, Debug)]
pub(super) enum FileKind {
    Summary,
    Progress,
}

impl FileKind {
    fn what(self) -> &'static str {
        match self {
            FileKind::Summary => "summary",
            FileKind::Progress => "progress",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            FileKind::Summary => &["runId", "status", "statistics", "evaluation"],
            FileKind::Progress => &["overallProgress", "allReports"],
        }
    }
}

/// A summary or progress file, read in one pass and kept small: the fields the
/// explorer shows, and its batch reports folded into at most
/// [`MAX_BATCH_POINTS`](super::MAX_BATCH_POINTS) points as they are read. Its error list (one entry per
/// failed row) is skipped, never held: the results journal has the rows.
#[derive(Debug)]
pub struct RunFile {
    pub(super) run_id: Option<String>,
    pub(super) csv_path: Option<String>,
    pub(super) status: Option<String>,
    pub(super) abort_reason: Option<String>,
    pub(super) total: Option<u64>,
    pub(super) statistics: Option<Value>,
    pub(super) evaluation: Option<Value>,
    pub(super) failure_reasons: Option<Value>,
    pub(super) error_groups: Option<Value>,
    pub(super) cost: Option<Value>,
    pub(super) slices: Option<Value>,
    pub(super) confidence: Option<Value>,
    pub(super) gate: Option<Value>,
    pub(super) comparison: Option<Value>,
    pub(super) config: Option<Value>,
    /// The summary's `sample` (a run over a seeded sample of the CSV).
    pub(super) csv_sample: Option<Value>,
    /// The summary's `precision` (a run with `--until-interval`).
    pub(super) precision: Option<Value>,
    pub(super) batches: Batches,
}

impl RunFile {
    /// A summary file's text.
    ///
    /// # Errors
    ///
    /// Not JSON, not an object, or without the fields a summary has.
    pub fn summary(text: &str) -> Result<RunFile, ExplorerError> {
        Self::read(text.as_bytes(), FileKind::Summary)
    }

    /// A progress file's text.
    ///
    /// # Errors
    ///
    /// As [`RunFile::summary`].
    pub fn progress(text: &str) -> Result<RunFile, ExplorerError> {
        Self::read(text.as_bytes(), FileKind::Progress)
    }

    /// A summary file read from `r` as it is parsed (the file is never held
    /// whole).
    ///
    /// # Errors
    ///
    /// As [`RunFile::summary`]; a read error is reported as the reason.
    pub fn summary_from_reader<R: std::io::Read>(r: R) -> Result<RunFile, ExplorerError> {
        Self::read(r, FileKind::Summary)
    }

    /// A progress file read from `r`. See [`RunFile::summary_from_reader`].
    ///
    /// # Errors
    ///
    /// As [`RunFile::summary`].
    pub fn progress_from_reader<R: std::io::Read>(r: R) -> Result<RunFile, ExplorerError> {
        Self::read(r, FileKind::Progress)
    }

    /// The run's seed (`config.seed`), when the file has it.
    pub fn seed(&self) -> Option<u64> {
        self.config.as_ref().and_then(|c| count(c, "seed"))
    }

    fn read<R: std::io::Read>(r: R, kind: FileKind) -> Result<RunFile, ExplorerError> {
        let what = kind.what();
        let mut de = serde_json::Deserializer::from_reader(r);
        let visitor = FileVisitor {
            kind,
            file: RunFile {
                run_id: None,
                csv_path: None,
                status: None,
                abort_reason: None,
                total: None,
                statistics: None,
                evaluation: None,
                failure_reasons: None,
                error_groups: None,
                cost: None,
                slices: None,
                confidence: None,
                gate: None,
                comparison: None,
                config: None,
                csv_sample: None,
                precision: None,
                batches: Batches::default(),
            },
            seen: Vec::new(),
        };
        let parsed = serde::Deserializer::deserialize_any(&mut de, visitor)
            .and_then(|parsed| de.end().map(|()| parsed));
        let (file, seen) = parsed.map_err(|e| ExplorerError::NotARunFile {
            what,
            reason: if e.to_string().starts_with(NOT_AN_OBJECT) {
                "not a JSON object".into()
            } else {
                e.to_string()
            },
        })?;
        if let Some(missing) = kind.required().iter().find(|f| !seen.contains(f)) {
            return Err(ExplorerError::NotARunFile {
                what,
                reason: format!("no `{missing}` field"),
            });
        }
        Ok(file)
    }
}

pub(super) const NOT_AN_OBJECT: &str = "not an object";

pub(super) struct FileVisitor {
    pub(super) kind: FileKind,
    pub(super) file: RunFile,
    /// The required fields seen.
    pub(super) seen: Vec<&'static str>,
}

impl<'de> serde::de::Visitor<'de> for FileVisitor {
    type Value = (RunFile, Vec<&'static str>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        mut self,
        mut map: A,
    ) -> Result<Self::Value, A::Error> {
        use serde::de::IgnoredAny;
        let opt_text = |v: Value| v.as_str().map(str::to_owned);
        while let Some(key) = map.next_key::<String>()? {
            if let Some(name) = self.kind.required().iter().find(|r| **r == key) {
                self.seen.push(name);
            }
            let f = &mut self.file;
            match key.as_str() {
                "runId" => f.run_id = opt_text(map.next_value()?),
                "csvPath" => f.csv_path = opt_text(map.next_value()?),
                "status" => f.status = opt_text(map.next_value()?),
                "abortReason" => f.abort_reason = opt_text(map.next_value()?),
                "statistics" => f.statistics = Some(map.next_value()?),
                "evaluation" => f.evaluation = Some(map.next_value()?),
                "failureReasons" => f.failure_reasons = Some(map.next_value()?),
                "errorGroups" => f.error_groups = Some(map.next_value()?),
                "cost" => f.cost = Some(map.next_value()?),
                "slices" => f.slices = Some(map.next_value()?),
                "confidence" => f.confidence = Some(map.next_value()?),
                "gate" => f.gate = Some(map.next_value()?),
                "comparison" => f.comparison = Some(map.next_value()?),
                "config" => f.config = Some(map.next_value()?),
                "sample" => f.csv_sample = Some(map.next_value()?),
                "precision" => f.precision = Some(map.next_value()?),
                "overallProgress" => {
                    let overall: Overall = map.next_value()?;
                    f.total = overall.total;
                }
                "allReports" => map.next_value_seed(ReportsSeed(&mut f.batches))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((self.file, self.seen))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(serde::de::Error::custom(NOT_AN_OBJECT))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
}

/// `overallProgress`: its total; its `errors` (every failed row) are skipped.
#[derive(serde::Deserialize)]
pub(super) struct Overall {
    #[serde(default)]
    pub(super) total: Option<u64>,
}

/// `allReports`, each report folded into the batch points as it is read.
pub(super) struct ReportsSeed<'a>(&'a mut Batches);

impl<'de> serde::de::DeserializeSeed<'de> for ReportsSeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ReportsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of batch reports")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(report) = seq.next_element::<Value>()? {
            self.0.add(&report);
        }
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(())
    }
}

pub(super) fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(super) fn count(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

pub(super) fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

pub(super) fn kind_name(kind: impl Serialize) -> Option<String> {
    match serde_json::to_value(kind) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}
