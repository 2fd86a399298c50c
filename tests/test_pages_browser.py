"""The operator's page in a real browser (headless Chromium): a replayed call rings the
operator's phone, the card pops within a second, and it is withdrawn when another operator
answers.  Screenshots of each page go to ``test-screenshots/``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from crm_core.users import UserDirectory
from tests.browser import chromium, logged_in, screenshot
from tests.conftest import PASSWORD, password_hash
from tests.fake_ami import FakeAmi
from tests.test_telephony_e2e import running_hub

POP_WITHIN = 1.0  # seconds from the PBX's first event for that phone to the card on the screen


async def test_the_card_pops_within_a_second_and_is_withdrawn_when_another_operator_answers(
    database_url: str, tmp_path: Path
) -> None:
    async with FakeAmi(speed=1) as fake, running_hub(database_url, tmp_path / "data", {"office": fake}) as hub:
        async with hub.context.transaction() as session:
            for name in ("op101", "op102"):
                (await UserDirectory(session).by_username(name)).password_hash = password_hash()
        async with chromium() as browser:
            boris = await logged_in(browser, str(hub.http.make_url("")), "op102", PASSWORD)
            await boris.goto("/operator")
            await boris.wait_for_selector("#state.ok")  # the pop socket is open
            await screenshot(boris, "operator-waiting")

            replay = fake.play("inbound_queue_answered")  # rings 101 and 102; 101 answers
            name = await boris.wait_for_selector(".pop .client-name", timeout=20_000)
            seen = asyncio.get_running_loop().time()
            rang = next(e.at for e in replay.played if any("/102@" in v or "/102-" in v for v in e.headers.values()))
            assert await name.text_content() == "Ромашка"
            assert await boris.text_content(".pop .inn") == "ИНН: 7707083893"
            assert seen - rang < POP_WITHIN, f"the card popped {seen - rang:.2f} s after the phone rang"
            await screenshot(boris, "operator-pop")

            reason = await boris.wait_for_selector(".pop.withdrawn .withdraw-reason", timeout=20_000)
            assert await reason.text_content() == "Ответил другой оператор"
            await screenshot(boris, "operator-withdrawn")
            await replay.wait()
        print(f"\nthe card popped {seen - rang:.3f} s after the PBX's first event for 102")
