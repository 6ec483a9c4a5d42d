# Copyright 2026 The srdiff-diffusers authors. Licensed under the Apache License, Version 2.0.
"""Saving and loading SRDiff pipelines as Hub-native folders (`pipeline.py`, the SRDiff model card), for every pipeline."""

import os
import tempfile
from typing import Optional

from .. import hub
from .pipeline_folder import check_pipeline_folder


class HubNativeMixin:
    r"""
    diffusers' `from_pretrained`, `save_pretrained` and `push_to_hub` for our pipelines (put before
    `DiffusionPipeline` in the bases): a local folder is checked before diffusers reads it, a saved folder also loads
    with `DiffusionPipeline.from_pretrained(..., trust_remote_code=True)`, and the Hub gets the SRDiff model card.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        r"""
        diffusers' `DiffusionPipeline.from_pretrained` (a local folder or a Hub id), after checking that a local
        folder holds a complete SRDiff pipeline: diffusers' own errors for a missing part name a file it looked for
        instead (`config.json` of the folder itself, a `.bin` when the `.safetensors` is missing).
        """
        path = pretrained_model_name_or_path
        if isinstance(path, (str, os.PathLike)) and os.path.isdir(path):
            check_pipeline_folder(path, kwargs.get("variant"))
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def _dict_from_json_file(cls, json_file):
        # Loading with this class asks for this class: `["pipeline", name]` would make diffusers run the folder's
        # pipeline.py, which needs `trust_remote_code=True` (and for a subclass, would return another class).
        config = super()._dict_from_json_file(json_file)
        if isinstance(config, dict) and isinstance(config.get("_class_name"), (list, tuple)):
            config["_class_name"] = hub.pipeline_class_name(config["_class_name"]) or config["_class_name"]
        return config

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        r"""
        diffusers' `save_pretrained`, then what makes the folder Hub-native (`hub.make_hub_native`): `pipeline.py`
        and `_class_name` as `["pipeline", class]` for `DiffusionPipeline.from_pretrained(..., trust_remote_code=True)`,
        and the SRDiff model card as README.md unless the folder has a card already (a training run's is richer).
        With `push_to_hub=True` (and `repo_id`, `private`, `token`, `commit_message`, `create_pr`, `subfolder`), the
        folder is then uploaded with that card, not diffusers' generic one.
        """
        upload = {k: kwargs.pop(k) for k in ("repo_id", "private", "token", "commit_message", "create_pr", "subfolder")
                  if k in kwargs}  # fmt: skip
        repo_id = None
        if push_to_hub:  # first, as diffusers does: the card names the repository's full id
            name = upload.pop("repo_id", None) or os.path.basename(os.path.normpath(save_directory))
            repo_id = hub.create_repo(name, private=upload.pop("private", None), token=upload.get("token"))
        super().save_pretrained(save_directory, *args, **kwargs)
        hub.make_hub_native(save_directory, hub.pipeline_card(save_directory, hub_model_id=repo_id))
        if push_to_hub:
            return hub.upload_folder(
                save_directory,
                repo_id,
                token=upload.get("token"),
                commit_message=upload.get("commit_message"),
                create_pr=upload.get("create_pr", False),
                path_in_repo=upload.get("subfolder"),
            )

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: Optional[str] = None,
        private: Optional[bool] = None,
        token: Optional[str] = None,
        create_pr: bool = False,
        safe_serialization: bool = True,
        variant: Optional[str] = None,
        subfolder: Optional[str] = None,
    ) -> str:
        r"""
        Uploads the pipeline to the Hub repository `repo_id` (created if needed), as diffusers' `push_to_hub` does,
        but with the SRDiff model card (metadata, usage with both loading ways, `pip install` line) as README.md
        instead of diffusers' generic template, and the `pipeline.py` that lets plain diffusers load it. A card
        already in the repository is replaced: to upload a training run's card, `srdiff push` its folder.
        Returns the commit's URL.
        """
        with tempfile.TemporaryDirectory() as folder:
            return self.save_pretrained(
                folder,
                safe_serialization=safe_serialization,
                variant=variant,
                push_to_hub=True,
                repo_id=repo_id,
                private=private,
                token=token,
                commit_message=commit_message,
                create_pr=create_pr,
                subfolder=subfolder,
            )
