"""In real Chromium: every page reachable from the recruiter menu fits a phone (390×844) and a
laptop (1440×900) without horizontal scrolling, with realistic long data, and the top bar stays
on one row at 1440 px."""

from __future__ import annotations

import io
from datetime import timedelta

from playwright.sync_api import Page

from app import clock
from app.campaigns import services as campaigns
from app.candidates import importer
from app.extensions import db
from app.mail.outbox import kick_dispatcher
from app.models import (
    Candidate,
    CandidateImport,
    Message,
    MessageStatus,
    ProviderAccount,
    Role,
    TemplateKind,
)

SIZES = [(390, 844), (1440, 900)]
LONG_ORG = "Globex International Talent Acquisition & Executive Search Partners (EMEA) Ltd"
LONG_EMAIL = (
    "maximilian.alexander.konstantinopoulos-vanderbilt@recruiting.extremely-long-subdomain"
    ".example.com"
)
WIDE_CSV = (
    ",".join(f"Column number {n} with a long heading" for n in range(12))
    + "\n"
    + ",".join(f"value-{n}-{'x' * 30}" for n in range(12))
    + "\n"
)

# The elements that overflow the viewport on the right, innermost first (an element whose
# children all fit is the one to fix), described as tag#id.class (width px).
OVERFLOW = """() => {
  const limit = document.documentElement.clientWidth;
  const clipped = el => {  // inside a box that hides or scrolls what sticks out of it
    const free = getComputedStyle(el).position === 'absolute';  // escapes static ancestors
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (free && style.position === 'static') continue;
      if (style.overflowX !== 'visible') return true;
    }
    return false;
  };
  const out = [...document.querySelectorAll('body *')].filter(el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.right > limit + 0.5 && !clipped(el);
  });
  const inner = out.filter(el => !out.some(o => o !== el && el.contains(o)));
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + [...el.classList].map(c => '.' + c).join('') + ' (' + Math.round(
      el.getBoundingClientRect().width) + ' px, right ' + Math.round(
      el.getBoundingClientRect().right) + ')';
  return {scroll: document.documentElement.scrollWidth, inner: innerWidth,
          widest: inner.slice(0, 3).map(name)};
}"""

# The top bar's items (brand, menu links, org and account menus): their tops, and the bar's
# height against one item's height.
TOPBAR = """() => {
  const items = [...document.querySelectorAll(
    '.topbar .brand, .topbar .mainnav a, .topbar .topbar-right > * > summary')];
  const tops = items.map(el => Math.round(el.getBoundingClientRect().top));
  const inner = document.querySelector('.topbar-inner');
  const style = getComputedStyle(inner);
  const content = inner.getBoundingClientRect().height - parseFloat(style.paddingTop)
    - parseFloat(style.paddingBottom);
  const tallest = Math.max(...items.map(el => el.getBoundingClientRect().height));
  const links = [...document.querySelectorAll('.topbar .mainnav a')].map(
    el => Math.round(el.getBoundingClientRect().top));
  const middle = el => { const r = el.getBoundingClientRect(); return r.top + r.height / 2; };
  const chip = document.querySelector('.topbar .role-chip');
  return {tops, content: Math.round(content), tallest: Math.round(tallest),
          chip: chip ? chip.textContent.trim() + (chip.scrollWidth > chip.clientWidth
            || chip.getBoundingClientRect().right > chip.closest('summary')
              .getBoundingClientRect().right ? ' (cut)' : '') : null,
          wrapped: items.filter((el, i) => Math.abs(middle(el) - middle(items[0])) > 3
            || (el.closest('.mainnav') && links.some(t => t !== links[0]))).map(
            el => el.textContent.trim())};
}"""


def _seed(factories, run_worker) -> tuple[dict[str, str], str]:
    """An org with long names and a bit of everything; the admin's login and the page paths."""
    org = factories.make_org(LONG_ORG)
    org.postal_address = "1 Infinite Loop, Building 42, Floor 7, Cupertino, CA 95014"
    db.session.commit()
    admin = factories.make_user(
        org,
        Role.ADMIN,
        email="adaline.administrator@globex-international-talent.example.com",
        name="Adaline Administrator-Featherstonehaugh",
        password="a-long-password",
    )
    campaign = factories.launch_campaign(org, people=4, tag="spring", user=admin)
    campaign.name = "Senior Platform Reliability Engineering — spring hiring round 2026 (EMEA)"
    db.session.commit()
    person = factories.make_candidate(org, email=LONG_EMAIL, tags=["shortlist", "backend"])
    person.phone, person.timezone = "+44 20 7946 0000 ext. 12345", "America/Argentina/Buenos_Aires"
    person.custom = {"portfolio": "https://" + "portfolio-" * 12 + ".example.com/work"}
    db.session.commit()
    job = factories.make_job(org, "Principal Distributed Systems Engineer, Payments Platform")
    template = factories.make_email_template(org, TemplateKind.INVITATION, name="Onsite invite")
    slotted = campaigns.create(
        org,
        admin,
        name="Onsite interviews with a fixed time slot for the payments team",
        job=job,
        template=template,
        audience={"ids": [person.id]},
        respond_by=None,
        slot_starts_at=clock.now() + timedelta(days=5),
        location="Headquarters, 221B Baker Street, London NW1 6XE, meeting room Ada",
    )
    campaigns.launch(org, slotted, admin, None)
    db.session.commit()
    kick_dispatcher()  # as the launch route does
    run_worker()
    failed = db.session.scalars(
        db.select(Message).where(Message.campaign_id == campaign.id).order_by(Message.id)
    ).first()
    failed.status = MessageStatus.FAILED
    failed.last_error = "550 5.1.1 <" + LONG_EMAIL + ">: Recipient address rejected: " + "x" * 80
    db.session.commit()
    factories.make_suppression(org, email="unsubscribed." + LONG_EMAIL)
    provider = factories.make_provider_account(org, label="Transactional relay (EU, primary)")
    upload = CandidateImport(
        org_id=org.id,
        filename="spring-round-candidates-export-from-the-applicant-tracking-system.csv",
        encoding="",
        delimiter="",
    )
    db.session.add(upload)
    db.session.flush()
    importer.receive(upload, io.BytesIO(WIDE_CSV.encode()))
    db.session.commit()
    message = db.session.scalars(
        db.select(Message).where(Message.candidate_id == person.id)
    ).first()
    template_id = campaign.template_id
    pages = {
        "overview": "/",
        "campaigns list": "/campaigns/",
        "campaign page": f"/campaigns/{campaign.id}",
        "campaign with a slot": f"/campaigns/{slotted.id}",
        "new campaign": "/campaigns/new",
        "candidates list": "/candidates/",
        "candidate page": f"/candidates/{person.id}",
        "new candidate": "/candidates/new",
        "edit candidate": f"/candidates/{person.id}/edit",
        "import": "/candidates/import",
        "import mapping": f"/candidates/imports/{upload.id}",
        "jobs": "/jobs/",
        "job": f"/jobs/{job.id}",
        "templates list": "/templates/",
        "template editor": f"/templates/{template_id}",
        "template history": f"/templates/{template_id}/history",
        "dashboard": "/dashboard",
        "find a message": "/messages/search?q=" + LONG_EMAIL,
        "message page": f"/messages/{message.id}",
        "dead letters": "/dead-letters",
        "suppressions": "/suppressions",
        "settings": "/settings",
        "branding": "/settings/branding",
        "providers": "/settings/providers",
        "provider": f"/settings/providers/{provider.id}",
        "dkim": "/settings/dkim",
        "team": "/team/",
        "new organization": "/orgs/new",
        "dev mailbox": "/dev/mail/",
    }
    assert db.session.get(Candidate, person.id) and db.session.get(ProviderAccount, provider.id)
    return pages, admin.email


def _log_in(page: Page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/")


def test_every_menu_page_fits_a_phone_and_a_laptop(
    page: Page, live_server, devmail_sink, run_worker, factories, shots
):
    pages, email = _seed(factories, run_worker)
    _log_in(page, live_server, email)
    problems = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for name, path in pages.items():
            response = page.goto(live_server + path)
            assert response.status == 200, f"{name} ({path}) answered {response.status}"
            page.wait_for_load_state("load")
            found = page.evaluate(OVERFLOW)
            if found["scroll"] > found["inner"]:
                problems.append(
                    f"{name} at {width} px scrolls sideways ({found['scroll']} px wide): "
                    + ", ".join(found["widest"])
                )
            if width == 1440:
                bar = page.evaluate(TOPBAR)
                if bar["wrapped"] or bar["content"] > bar["tallest"] + 1:
                    problems.append(
                        f"{name}: the top bar takes {bar['content']} px for items "
                        f"{bar['tallest']} px tall; on a second row: {bar['wrapped']}"
                    )
                if bar["chip"] != "Admin":  # the org menu's role, whole beside a long name
                    problems.append(
                        f"{name}: the role in the organization menu reads {bar['chip']}"
                    )
            if name in ("campaign with a slot", "candidate page", "dashboard", "overview"):
                shots(page, f"layout-{name.replace(' ', '-')}-{width}")
    assert not problems, "\n".join(problems)
