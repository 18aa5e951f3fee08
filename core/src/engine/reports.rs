//! What a run hands its host to write and show: a finished row's journal
//! record, the progress file, the summary and its comparison.

use std::borrow::Cow;

use crate::compare::{Comparison, SideMeta, TimingFrom};
use crate::cost::Cost;
use crate::journal::{ItemResult, ItemStatus};
use crate::report::Unreached;
use crate::report::{
    display_image, group_errors, FailureReasons, OverallProgress, ProgressReport, RunStatus,
    Statistics, Summary,
};
use crate::time::Millis;

use super::{ItemDone, Run, Stop};

impl Run {
    /// The journal record of a finished item, borrowing its text from the run.
    /// Call it before polling again: a streaming run lets go of the row then.
    ///
    /// # Panics
    ///
    /// For a row the run no longer holds (a streaming run polled since).
    pub fn result<'a>(&'a self, done: &'a ItemDone) -> ItemResult<'a> {
        let item = self.item(done.row);
        let prediction = done.prediction.map(|p| self.labels.names()[p].as_str());
        let (error_kind, error) = match &done.failure {
            Some((kind, message)) => (Some(*kind), Some(Cow::Owned(message.clone()))),
            None => (None, None),
        };
        ItemResult {
            row: done.row,
            line: item.line,
            id: item.id.as_deref().map(Cow::Borrowed),
            image: display_image(item.image.as_str()),
            label: Cow::Borrowed(&item.label),
            prediction: prediction.map(Cow::Borrowed),
            agreement: prediction.map(|p| *p == *item.label),
            status: if done.failure.is_none() {
                ItemStatus::Success
            } else {
                ItemStatus::Failed
            },
            attempts: done.attempts,
            latency_ms: done.latency_ms,
            error,
            error_kind,
            http_status: done.http_status,
            usage: done.usage,
            cost_usd: done
                .usage
                .zip(self.price.as_ref())
                .map(|(usage, price)| price.row_usd(usage)),
            answer: done.answer.as_deref().map(Cow::Borrowed),
            confidence: done.confidence,
            alternatives: done
                .alternatives
                .iter()
                .map(|a| crate::confidence::LabelChance {
                    label: Cow::Borrowed(self.labels.names()[a.label].as_str()),
                    probability: a.probability,
                })
                .collect(),
            confidence_gap: done.confidence_gap,
            finished_at: done.finished_at,
        }
    }

    /// The progress file's content as of `now`.
    pub fn progress(&self, now: Millis) -> ProgressReport<'_> {
        ProgressReport {
            timestamp: now.to_iso8601(),
            csv_path: &self.config.csv_path,
            batch_number: self.tallies.reports.len(),
            total_batches: self.tallies.batch_count(),
            overall_progress: OverallProgress {
                total: self.rows.total(),
                successful: self.tallies.successful,
                failed: self.tallies.failed,
                errors: &self.tallies.errors,
            },
            current_batch_report: self.tallies.reports.last(),
            all_reports: &self.tallies.reports,
            run_id: &self.config.run_id,
            status: self.status(),
            config: &self.config,
            provider_batches: None,
        }
    }

    /// The summary as of `now` (also what `Output::Finished` carries).
    pub fn summary(&self, now: Millis) -> Summary {
        let elapsed = now.since(self.started_at);
        let abort = match &self.stop {
            Some(Stop::Aborted(reason)) => Some(reason.clone()),
            _ => None,
        };
        let statistics = self.tallies.statistics(elapsed);
        let evaluation = self.tallies.eval.evaluate(&self.labels);
        let slices = self.tallies.slices.slices(evaluation.agreement_rate);
        let sample = self
            .config
            .sample
            .as_ref()
            .map(|sample| crate::sample::SampleReport::of(sample, &evaluation));
        let cost = if self.batch_mode {
            Cost::of_batch(
                statistics.usage,
                self.tallies.items_with_usage,
                self.config.price,
                self.config.provider.model(),
            )
        } else {
            Cost::of(
                statistics.usage,
                self.tallies.items_with_usage,
                self.config.price,
                self.config.provider.model(),
            )
        };
        let comparison = self.comparison(&statistics, &cost);
        Summary {
            timestamp: now.to_iso8601(),
            run_id: self.config.run_id.clone(),
            status: self.status(),
            abort_reason: abort.as_ref().map(ToString::to_string),
            abort_kind: abort,
            csv_path: self.config.csv_path.clone(),
            started_at: self.started_at.to_iso8601(),
            finished_at: now.to_iso8601(),
            total_batches: self.tallies.batch_count(),
            overall_progress: OverallProgress {
                total: self.rows.total(),
                successful: self.tallies.successful,
                failed: self.tallies.failed,
                errors: self.tallies.errors.clone(),
            },
            statistics,
            evaluation,
            slices,
            all_reports: self.tallies.reports.clone(),
            config: self.config.clone(),
            failure_reasons: FailureReasons::of(&self.tallies.errors),
            error_groups: group_errors(&self.tallies.errors),
            cost,
            pace: (!self.batch_mode).then(|| self.pace(now)),
            provider_batches: None,
            unreached: Unreached::of(self.tallies.successful, &self.tallies.errors),
            comparison,
            confidence: (!self.tallies.confidence.is_empty()).then(|| {
                self.tallies
                    .confidence
                    .report(self.config.target_agreement, self.labels.names())
            }),
            precision: self.precision.as_ref().map(|precision| {
                crate::anytime::PrecisionReport::of(
                    precision.sequence(),
                    self.config.until_interval.unwrap_or(0.0),
                    self.stop == Some(Stop::PrecisionReached),
                )
            }),
            sample,
        }
    }

    /// The comparison with the baseline, when the run has one: B is this run,
    /// its cost and latency its own statistics'.
    fn comparison(&self, statistics: &Statistics, cost: &Cost) -> Option<Comparison> {
        let live = self.tallies.comparison.as_ref()?;
        let latency = &statistics.latency_ms;
        let b = SideMeta {
            name: format!("this run ({})", self.config.run_id),
            run_id: Some(self.config.run_id.clone()),
            model: self.config.provider.model().map(str::to_owned),
            csv_path: Some(self.config.csv_path.clone()),
            cost_per_image_usd: cost.usd_per_image,
            latency: (latency.count > 0).then_some((latency.p50, latency.p95)),
            timing_from: Some(TimingFrom::Summary),
        };
        let partial = match self.status() {
            RunStatus::Completed => None,
            status => Some(format!(
                "B (this run) is {}: {} of {} rows are final",
                status.as_str(),
                self.tallies.final_count(),
                self.rows.total()
            )),
        };
        Some(live.comparison(b, partial))
    }
}
