"""Physical names: carry project and stack, fit AWS limits, stay unique when they must be shortened.

Many stacks (dev, prod, pr-123, ...) share one account, so every physical name starts with
`<project>-<stack>`. When a name would exceed its limit it is cut and an 8-character hash of the
full name is appended, so two long stack names that share a prefix still get different names.
"""

from __future__ import annotations

import hashlib
import re

import pulumi

# Terraform-style `name_prefix` arguments append a 26-character unique id.
NAME_PREFIX_SUFFIX = 26
S3_BUCKET_PREFIX_MAX = 37  # 63-character bucket names minus the 26-character suffix


def _clean(text: str, allowed: str) -> str:
    return re.sub(f"[^{allowed}]+", "-", text.lower()).strip("-")


def fit(full: str, max_len: int) -> str:
    """`full` if it fits, else a prefix of it plus a hash of all of it (deterministic, unique)."""
    if len(full) <= max_len:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[: max_len - 9].rstrip('-_')}-{digest}"


def estate_prefix(stack: str | None = None) -> str:
    return _clean(f"{pulumi.get_project()}-{stack or pulumi.get_stack()}", "a-z0-9-")


def physical(suffix: str, max_len: int, stack: str | None = None) -> str:
    """`<project>-<stack>-<suffix>` in lower-case letters, digits and hyphens, at most max_len; `stack`
    names another stack of this project (default: this one)."""
    return fit(f"{estate_prefix(stack)}-{_clean(suffix, 'a-z0-9-')}", max_len)


def physical_prefix(suffix: str, max_len: int) -> str:
    """For `name_prefix` arguments: room is left for the provider's 26-character suffix."""
    return physical(suffix, max_len - NAME_PREFIX_SUFFIX - 1) + "-"


def bucket_prefix(suffix: str) -> str:
    return physical(suffix, S3_BUCKET_PREFIX_MAX - 1) + "-"


def snake(suffix: str, max_len: int) -> str:
    """For Glue databases and tables, which Athena wants as lower_snake_case."""
    return physical(suffix, max_len).replace("-", "_")
