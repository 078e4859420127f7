"""`flask herald seed`: a fresh install gets a login, a job and candidates, once."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db


def test_seed_gives_a_fresh_install_a_login_a_job_and_candidates_once(app, ctx):
    from app.cli import DEMO_EMAIL
    from app.models import Candidate, Job, Membership

    runner = app.test_cli_runner()
    for _ in range(2):  # `make run` seeds at every start
        result = runner.invoke(args=["herald", "seed"])
        assert result.exit_code == 0, result.output
        assert f"Log in as {DEMO_EMAIL}" in result.output
    db.session.expire_all()
    [membership] = db.session.scalars(select(Membership)).all()
    org_id = membership.org_id
    assert [j.title for j in db.session.scalars(select(Job).where(Job.org_id == org_id))] == [
        "Backend Engineer"
    ]
    emails = db.session.scalars(select(Candidate.email).where(Candidate.org_id == org_id)).all()
    assert sorted(emails) == ["ada@example.com", "alan@example.com", "grace@example.com"]
    assert membership.org.postal_address  # its invitations carry an address, as bulk mail should
