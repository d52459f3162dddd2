"""Splink's per-level training warnings end as one line; its other records pass unchanged."""

from __future__ import annotations

import logging

from cdi.silver.linkage.splink_log import splink_warnings_summarised


def test_unobserved_level_warnings_are_summarised_once_and_others_pass(caplog):
    em = logging.getLogger("splink.internals.expectation_maximisation")
    with caplog.at_level(logging.INFO), splink_warnings_summarised():
        for _ in range(2):  # a second training rule repeats the same levels
            em.warning("WARNING:\nLevel All other comparisons on comparison city not observed in dataset, unable to train m value\n")
            em.warning("WARNING:\nLevel Exact match on comparison email not observed in dataset, unable to train m value\n")
        em.warning("WARNING:\nLevel Exact on comparison phone not observed in dataset, unable to train u value\n")
        logging.getLogger("splink.internals.linker").info("Your model is not yet fully trained")
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "not observed in dataset" in m], messages
    assert "Your model is not yet fully trained" in messages
    summary = [m for m in messages if "never occurred in the pairs that train m" in m]
    assert summary == [
        "link: 2 comparison level(s) never occurred in the pairs that train m (EM), so their m probabilities keep "
        "their starting values: city: All other comparisons; email: Exact match"
    ]
    assert any("train u (sampling)" in m and "phone: Exact" in m for m in messages)
    assert logging.getLogger("splink").propagate and not logging.getLogger("splink").handlers
