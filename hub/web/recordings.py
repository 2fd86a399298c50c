"""/api/calls/{id}/recording: a call's recording, played from the card.

The PBX names the file MixMonitor wrote (``MIXMONITOR_FILENAME``) as a path on its own disk;
the admin mounts that directory on the hub's machine and says where (``recordings_dir``), and
the file is served from there, with ranges so the player can seek.  Only a file inside the
mounted directory is ever served, whatever the PBX reported."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from aiohttp import web

from crm_core import audit
from crm_core.models import Role
from crm_core.telephony.call_log import CallLog
from hub.config import PbxSettings
from hub.web.endpoints import Api, ApiError, actor_of, session_of
from hub.web.state import CONTEXT

api = Api()
LISTENERS = {Role.admin, Role.operator}


def mounted_file(pbx: PbxSettings, reported: str) -> Path | None:
    """Where the PBX's file is here, or None when it lies outside the mounted directory."""
    if pbx.recordings_dir is None:
        return None
    path = PurePosixPath(reported)
    if path.is_absolute():
        if not path.is_relative_to(pbx.recordings_path):
            return None
        path = path.relative_to(pbx.recordings_path)
    root = pbx.recordings_dir.resolve()
    target = (root / path).resolve()
    return target if target.is_relative_to(root) else None


@api.route(
    "GET",
    r"/api/calls/{id:\d+}/recording",
    summary="The call's recording (audio, with ranges), from the PBX's mounted recordings directory",
    roles=LISTENERS,
    tag="calls",
    response_media_type="audio/*",
    errors=(404,),
)
async def recording(request: web.Request) -> web.StreamResponse:
    call = await CallLog(session_of(request)).get(int(request.match_info["id"]))
    if not call.recording_file:
        raise ApiError(404, "no_recording", "this call was not recorded")
    pbx = next((p for p in request.app[CONTEXT].settings.pbx if p.name == call.pbx), None)
    target = mounted_file(pbx, call.recording_file) if pbx is not None else None
    if target is None:
        raise ApiError(404, "recording_not_mounted", "the PBX's recordings directory is not mounted on the hub")
    if not target.is_file():
        raise ApiError(404, "recording_missing", f"the recording {call.recording_file} is not there (yet)")
    audit.record(session_of(request), actor_of(request), "listen", "call", call.id)
    return web.FileResponse(target, headers={"Cache-Control": "private, max-age=3600"})
