use super::*;
use crate::eval::Tally;
use crate::input::LabelSet;

fn req(text: &str) -> Requirement {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn refused(text: &str) -> RequirementError {
    match text.parse::<Requirement>() {
        Ok(r) => panic!("{text:?} should be refused, read as {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn requirements_read_every_measure_end_and_comparison() {
    let r = req("agreement >= 0.90");
    assert_eq!(
        (&r.measure, r.end, r.comparison, r.bound),
        (&Measure::Agreement, End::Value, Comparison::AtLeast, 0.9)
    );
    assert_eq!(r.to_string(), "agreement >= 0.90");
    let r = req("  kappa>0.6 ");
    assert_eq!(
        (&r.measure, r.comparison, r.bound),
        (&Measure::Kappa, Comparison::Above, 0.6)
    );
    assert_eq!(r.to_string(), "kappa > 0.6");
    assert_eq!(req("macro_f1 >= 0.8").measure, Measure::MacroF1);
    assert_eq!(req("Weighted_F1 < 1").measure, Measure::WeightedF1);
    assert_eq!(
        req("recall[cat] >= 0.7").measure,
        Measure::Recall("cat".into())
    );
    assert_eq!(
        req("precision[dog] <= 1").measure,
        Measure::Precision("dog".into())
    );
    assert_eq!(req("f1[fox] > 0").measure, Measure::F1("fox".into()));
    let r = req("recall[big cat].low >= 70%");
    assert_eq!(
        (&r.measure, r.end, r.bound),
        (&Measure::Recall("big cat".into()), End::Low, 0.7)
    );
    let r = req("failure_share <= 0.02");
    assert_eq!(
        (&r.measure, r.comparison, r.bound),
        (&Measure::FailureShare, Comparison::AtMost, 0.02)
    );
    let r = req("failure_share.high < 2%");
    assert_eq!(
        (r.end, r.comparison, r.bound),
        (End::High, Comparison::Below, 0.02)
    );
    assert_eq!(req("agreement.low >= 0.88").end, End::Low);
    assert_eq!(req("kappa >= -0.2").bound, -0.2);
    // A label may hold comparison signs, dots, brackets and spaces: the comparison
    // is read from the right, the label up to its last `]`.
    assert_eq!(
        req("recall[a>b] >= 0.5").measure,
        Measure::Recall("a>b".into())
    );
    let r = req("recall[x.low].high > 0.1");
    assert_eq!(
        (&r.measure, r.end),
        (&Measure::Recall("x.low".into()), End::High)
    );
    assert_eq!(
        req("recall[a[b]] >= 0.5").measure,
        Measure::Recall("a[b]".into())
    );
}

#[test]
fn a_requirement_is_kept_as_its_text_and_read_back_the_same() {
    for text in [
        "agreement >= 0.90",
        "recall[big cat].low >= 70%",
        "failure_share.high < 0.05",
        "kappa > -0.1",
    ] {
        let r = req(text);
        assert_eq!(r.to_string(), text);
        assert_eq!(req(&r.to_string()), r);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Requirement>(&json).unwrap(), r);
    }
    let bad = serde_json::from_str::<Requirement>("\"agrement >= 0.9\"").unwrap_err();
    assert!(bad.to_string().contains("`agrement >= 0.9`"), "{bad}");
}

#[test]
fn bad_requirements_say_what_is_wrong_and_how_one_is_written() {
    assert_eq!(refused(""), RequirementError::Empty);
    assert_eq!(refused("   "), RequirementError::Empty);
    assert_eq!(refused("agreement"), RequirementError::NoComparison);
    use RequirementError::*;
    let exact = [
        ("agreement == 0.9", NoComparison),
        ("agreement = 0.9", NoComparison),
        ("agreement => 0.9", BadComparison("=>".into())),
        ("agreement >== 0.9", BadComparison(">==".into())),
        ("agreement >= high", BadBound("high".into())),
        ("agreement >=", BadBound(String::new())),
        ("agreement >= NaN", BadBound("NaN".into())),
        ("agreement >= inf", BadBound("inf".into())),
        ("agrement >= 0.9", UnknownMeasure("agrement".into())),
        ("accuracy >= 0.9", UnknownMeasure("accuracy".into())),
        ("macro_f1.low >= 0.8", NoInterval("macro_f1".into())),
        ("f1[cat].high <= 0.8", NoInterval("f1[cat]".into())),
    ];
    for (text, error) in exact {
        assert_eq!(refused(text), error, "{text}");
    }
    for text in ["agreement >= 1.5", "agreement >= 95", "kappa >= -2"] {
        assert!(matches!(refused(text), BoundOutOfRange { .. }), "{text}");
    }
    assert!(matches!(refused("agreement.mid >= 0.9"), UnknownMeasure(_)));
    for text in [
        "recall >= 0.7",
        "recall[] >= 0.7",
        "recall[cat >= 0.7",
        "recall[cat]x >= 0.7",
        "agreement[cat] >= 0.7",
    ] {
        assert!(matches!(refused(text), BadLabel(..)), "{text}");
    }
    // Every message but the range's and the interval's ends with the grammar.
    let message = refused("agrement >= 0.9").to_string();
    assert!(
        message.starts_with("unknown measure `agrement`; a requirement is MEASURE OP BOUND"),
        "{message}"
    );
    for m in [
        "agreement",
        "kappa",
        "macro_f1",
        "failure_share",
        "recall[LABEL]",
        ">=",
        "90%",
    ] {
        assert!(message.contains(m), "{m} missing from {message}");
    }
    let message = refused("agreement >= 1.5").to_string();
    assert_eq!(
        message,
        "the bound 1.5 is outside agreement's range, 0 to 1"
    );
}

/// An evaluation of `pairs` (label index, prediction index) over `labels`.
fn evaluation(labels: &[&str], pairs: &[(usize, usize, u64)]) -> Evaluation {
    let set = LabelSet::from_labels(labels.iter().copied());
    let mut tally = Tally::new(set.len());
    for &(l, p, n) in pairs {
        tally.record_many(l, p, n);
    }
    tally.evaluate(&set)
}

fn judged(text: &str, ev: &Evaluation, processed: u64, failed: u64) -> Judged {
    req(text).judge(&Measured {
        evaluation: ev,
        processed,
        failed,
    })
}

#[test]
fn requirements_are_judged_at_the_boundary() {
    // 9 of 10 agree: the agreement is exactly 0.9.
    let ev = evaluation(&["cat", "dog"], &[(0, 0, 5), (1, 1, 4), (1, 0, 1)]);
    assert_eq!(ev.agreement_rate, Some(0.9));
    let at = |text: &str| judged(text, &ev, 10, 0);
    assert_eq!(at("agreement >= 0.90").passed, Some(true));
    assert_eq!(at("agreement >= 90%").passed, Some(true));
    assert_eq!(at("agreement <= 0.9").passed, Some(true));
    assert_eq!(at("agreement > 0.9").passed, Some(false));
    assert_eq!(at("agreement < 0.9").passed, Some(false));
    assert_eq!(
        at("agreement >= 0.90").text,
        "agreement 0.90 >= 0.90 required: passed"
    );
    assert_eq!(
        at("agreement > 0.90").text,
        "agreement 0.90 <= 0.90 required: FAILED"
    );
    let missed = at("agreement >= 0.91");
    assert_eq!((missed.value, missed.passed), (Some(0.9), Some(false)));
    assert_eq!(missed.text, "agreement 0.90 < 0.91 required: FAILED");
    assert_eq!(
        at("agreement >= 91%").text,
        "agreement 90.0% < 91% required: FAILED"
    );
    // recall[dog] = 4/5 = 0.8; recall[cat] = 1.
    assert_eq!(at("recall[dog] >= 0.8").passed, Some(true));
    assert_eq!(at("recall[dog] > 0.8").passed, Some(false));
    assert_eq!(at("recall[cat] >= 1").passed, Some(true));
    // precision[cat] = 5/6 = 0.8333.
    assert_eq!(at("precision[cat] >= 0.8333").passed, Some(true));
    assert_eq!(at("precision[cat] >= 0.8334").passed, Some(false));
}

/// The interval ends are the summary's own (Wilson for rates, ± 1.96 standard
/// errors for kappa); the failure share's interval is Wilson's over the
/// processed rows. Reference, statsmodels 0.15:
///
/// ```python
/// from statsmodels.stats.proportion import proportion_confint
/// proportion_confint(9, 10, method='wilson')   # (0.59585, 0.98212)
/// proportion_confint(2, 100, method='wilson')  # (0.00550, 0.07001)
/// ```
#[test]
fn interval_ends_are_the_summarys_and_wilsons() {
    let ev = evaluation(&["cat", "dog"], &[(0, 0, 5), (1, 1, 4), (1, 0, 1)]);
    let at = |text: &str, failed: u64| judged(text, &ev, 100, failed);
    assert_eq!(at("agreement.low >= 0.5958", 0).value, Some(0.5958));
    assert_eq!(at("agreement.low >= 0.5958", 0).passed, Some(true));
    assert_eq!(at("agreement.low >= 0.5959", 0).passed, Some(false));
    assert_eq!(at("agreement.high <= 0.9821", 0).value, Some(0.9821));
    let k = ev.kappa.unwrap();
    assert_eq!(
        at("kappa.low >= 0", 0).value,
        Some(k.value - 1.96 * k.standard_error)
    );
    assert_eq!(
        at("kappa.high >= 0", 0).value,
        Some((k.value + 1.96 * k.standard_error).min(1.0))
    );
    // 2 failed of 100 processed.
    assert_eq!(at("failure_share <= 0.02", 2).passed, Some(true));
    assert_eq!(at("failure_share < 0.02", 2).passed, Some(false));
    assert_eq!(
        at("failure_share <= 0.02", 3).text,
        "failure_share 0.03 > 0.02 required: FAILED"
    );
    assert_eq!(at("failure_share.low <= 0.01", 2).value, Some(0.0055));
    assert_eq!(at("failure_share.high <= 0.07", 2).value, Some(0.07));
    assert_eq!(at("failure_share.high <= 0.07", 2).passed, Some(true));
    assert_eq!(at("failure_share.high < 0.07", 2).passed, Some(false));
}

#[test]
fn a_value_just_under_the_bound_is_not_shown_equal_to_it() {
    // 2,249 of 2,500: 0.8996, which two decimals would print as 0.90.
    let ev = evaluation(&["a", "b"], &[(0, 0, 2249), (0, 1, 251)]);
    let j = judged("agreement >= 0.90", &ev, 2500, 0);
    assert_eq!(j.text, "agreement 0.8996 < 0.90 required: FAILED");
    let j = judged("agreement >= 90%", &ev, 2500, 0);
    assert_eq!(j.text, "agreement 89.96% < 90% required: FAILED");
}

#[test]
fn a_measure_the_run_could_not_compute_fails_its_requirement() {
    let empty = evaluation(&["cat", "dog"], &[]);
    let gate = judge(
        &[
            req("agreement >= 0.5"),
            req("recall[cat] >= 0.5"),
            req("failure_share <= 0.5"),
        ],
        &Measured {
            evaluation: &empty,
            processed: 0,
            failed: 0,
        },
    );
    assert_eq!(gate.verdict, Verdict::Failed);
    assert!(gate
        .requirements
        .iter()
        .all(|j| j.passed == Some(false) && j.value.is_none()));
    assert_eq!(
        gate.requirements[0].text,
        "agreement not measured (no row was compared); >= 0.5 required: FAILED"
    );
    assert_eq!(gate.headline(), "FAILED (3 of 3 requirements missed)");
    // A label every row of which failed has no recall.
    let ev = evaluation(&["cat", "dog"], &[(0, 0, 3)]);
    let j = judged("recall[dog] >= 0", &ev, 4, 1);
    assert_eq!(j.passed, Some(false));
    assert!(
        j.text.contains("no compared row has this label"),
        "{}",
        j.text
    );
}

#[test]
fn the_verdict_passes_only_when_every_requirement_does() {
    let ev = evaluation(&["cat", "dog"], &[(0, 0, 5), (1, 1, 4), (1, 0, 1)]);
    let m = Measured {
        evaluation: &ev,
        processed: 10,
        failed: 0,
    };
    let pass = judge(&[req("agreement >= 0.9"), req("macro_f1 >= 0.5")], &m);
    assert_eq!(pass.verdict, Verdict::Passed);
    assert_eq!(pass.headline(), "passed (2 requirements met)");
    let fail = judge(&[req("agreement >= 0.9"), req("kappa >= 0.99")], &m);
    assert_eq!(fail.verdict, Verdict::Failed);
    assert_eq!(
        fail.requirements
            .iter()
            .map(|j| j.passed)
            .collect::<Vec<_>>(),
        [Some(true), Some(false)]
    );
    assert_eq!(fail.headline(), "FAILED (1 of 2 requirements missed)");
    let json = serde_json::to_value(&fail).unwrap();
    assert_eq!(json["verdict"], "failed");
    assert_eq!(json["requirements"][1]["requirement"], "kappa >= 0.99");
    assert_eq!(json["requirements"][1]["passed"], false);
    assert!(json.get("note").is_none());
    let not = GateReport::not_judged(&[req("agreement >= 0.9")], "the run was interrupted");
    assert_eq!(not.verdict, Verdict::NotJudged);
    assert_eq!(not.requirements[0].passed, None);
    assert_eq!(not.headline(), "not judged: the run was interrupted");
    assert_eq!(serde_json::to_value(&not).unwrap()["verdict"], "notJudged");
}

#[test]
fn labels_a_requirement_names_must_be_the_csvs() {
    let labels = vec!["cat".to_string(), "dog".to_string()];
    let reqs = [req("recall[cat] >= 0.5"), req("agreement >= 0.5")];
    assert_eq!(unknown_labels(&reqs, &labels), None);
    let reqs = [req("recall[Cat] >= 0.5"), req("precision[cow] >= 0.5")];
    assert_eq!(
        unknown_labels(&reqs, &labels).unwrap(),
        "no row of the CSV has the labels `Cat` (in `recall[Cat] >= 0.5`), `cow` (in `precision[cow] >= 0.5`); its labels: cat, dog"
    );
}
