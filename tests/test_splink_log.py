"""Splink's per-level training warnings end as one line; its other records pass unchanged."""

from __future__ import annotations

import logging

from cdi.silver.linkage.splink_log import splink_warnings_summarised

_M = "WARNING:\nLevel {} on comparison {} not observed in dataset, unable to train m value\n"


def test_unobserved_level_warnings_are_summarised_once_per_level_with_the_rules_that_missed_it(caplog):
    em = logging.getLogger("splink.internals.expectation_maximisation")
    # the CLI sets "splink" to WARNING when a test ran it in this process; this test needs its INFO records
    caplog.set_level(logging.INFO, logger="splink")
    with caplog.at_level(logging.INFO), splink_warnings_summarised() as warnings:
        em.warning("WARNING:\nLevel Exact on comparison phone not observed in dataset, unable to train u value\n")
        for rule in ("l.dob = r.dob", "l.email = r.email"):
            warnings.step(rule)
            em.warning(_M.format("All other comparisons", "city"))
            em.warning(_M.format("All other comparisons", "city"))  # Splink may repeat within a rule
            if rule == "l.dob = r.dob":
                em.warning(_M.format("Exact match", "email"))
        logging.getLogger("splink.internals.linker").info("Your model is not yet fully trained")
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "not observed in dataset" in m], messages
    assert "Your model is not yet fully trained" in messages
    (summary,) = [m for m in messages if m.startswith("link: ")]
    assert summary == (
        "link: EM saw no pairs at 2 comparison level(s) under some training rules, which leave those levels' m as it "
        "was: city: All other comparisons (2 of 2); email: Exact match (1 of 2). u sampling saw no pairs at: phone: Exact"
    )
    assert logging.getLogger("splink").propagate and not logging.getLogger("splink").handlers
