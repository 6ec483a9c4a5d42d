# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""
`srdiff push MODEL_DIR user/name [--private] [--token TOKEN]`: uploads a saved SRDiff pipeline folder (a converted
checkpoint, an export, a training run's output) to a Hub model repository, in one commit.

The folder is checked first (a complete pipeline: `model_index.json`, `unet/`, `encoder/`, `scheduler/`, weights).
A folder of an earlier release gets what makes it Hub-native in the upload, not on disk: `pipeline.py`,
`model_index.json` with `_class_name` as `["pipeline", class]`, and the SRDiff model card when it has no README.md
(a card already there, e.g. a training run's, is uploaded as it is). `--update-folder` writes them into the folder too.
"""

import argparse
import os

from huggingface_hub.utils import validate_repo_id

try:  # huggingface_hub >= 1 speaks httpx: one base class for connection and HTTP status errors
    from huggingface_hub.errors import HTTPError as HubRequestError
except ImportError:  # earlier releases speak requests
    from requests import RequestException as HubRequestError


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="A saved SRDiff pipeline folder (`save_pretrained`, `srdiff convert`, ...).")
    parser.add_argument("repo_id", help="The Hub model repository, `user/name` (created if missing).")
    parser.add_argument("--private", action="store_true", help="Create the repository private (if it is new).")
    parser.add_argument("--token", default=None, help="A Hub token with write access; default: the cached login.")
    parser.add_argument("--commit-message", default=None, help="Default: `Upload SRDiff pipeline`.")
    parser.add_argument(
        "--update-folder",
        action="store_true",
        help="Also write pipeline.py, model_index.json and the card (if missing) into MODEL_DIR itself.",
    )


def run(args: argparse.Namespace) -> int:
    from .. import hub
    from ..pipelines.pipeline_folder import check_pipeline_folder

    if not os.path.isdir(args.model_dir):
        raise ValueError(f"{args.model_dir!r} is not a folder: give a saved SRDiff pipeline folder.")
    check_pipeline_folder(args.model_dir)
    validate_repo_id(args.repo_id)  # a malformed id is a one-line error here, not an HTTP error after the check
    try:
        repo_id = hub.create_repo(args.repo_id, private=args.private or None, token=args.token)
        files = hub.hub_files(args.model_dir, card=hub.pipeline_card(args.model_dir, hub_model_id=repo_id))
        if args.update_folder:
            hub.make_hub_native(args.model_dir, card=hub.pipeline_card(args.model_dir))
        url = hub.upload_folder(
            args.model_dir, repo_id, extra_files=files, token=args.token, commit_message=args.commit_message
        )
    except HubRequestError as error:  # no connection, no login, no write access: the user's to fix, not a bug
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise OSError(
            f"could not upload to the Hugging Face Hub ({reason}); check the connection and the login "
            "(`hf auth login`, or --token with write access)"
        ) from None
    print(f"Uploaded {args.model_dir} to https://huggingface.co/{repo_id} ({url})")
    return 0
