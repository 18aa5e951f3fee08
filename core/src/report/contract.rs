//! The fields of the progress file that existing consumers read: none may be
//! renamed or dropped (extra fields may be added). Tests of every host check the
//! files they write against these lists.

/// Top-level fields of the progress file.
pub const PROGRESS_FIELDS: &[&str] = &[
    "timestamp",
    "csvPath",
    "batchNumber",
    "totalBatches",
    "overallProgress",
    "currentBatchReport",
    "allReports",
];
/// Fields of `overallProgress`.
pub const OVERALL_PROGRESS_FIELDS: &[&str] = &["total", "successful", "failed", "errors"];
/// Fields of each batch report (`currentBatchReport`, `allReports[i]`).
pub const BATCH_REPORT_FIELDS: &[&str] = &[
    "batchNumber",
    "totalBatches",
    "batchStartIndex",
    "batchEndIndex",
    "batchSize",
    "processed",
    "successful",
    "failed",
    "elapsedMs",
    "averageTimePerImage",
    "estimatedTimeRemaining",
    "successRate",
];
