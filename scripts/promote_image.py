"""Promote the Batch image dev built and tested to prod, by digest: prod runs those bytes and builds nothing.

    python scripts/promote_image.py target --source IMAGE --account ID --region REGION --repository NAME
    python scripts/promote_image.py copy   --source IMAGE --account ID --region REGION --repository NAME

IMAGE is dev's `batch_image` output (<registry>/<repository>@sha256:<digest>); ACCOUNT, REGION and
REPOSITORY name prod's own ECR repository. Both commands print the promoted image,
<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<digest> (the same digest), which is what
prod's `batchImage` setting is set to. `target` only computes it (the prod preview shows the job
definitions it gives); `copy` also copies the image into prod's repository, before prod's update:
`skopeo copy --all --preserve-digests` moves the manifest byte for byte (so the digest stays, or the copy
fails) with every layer, tagged `promoted-<first 16 hex digits of the digest>` so that the repository's
lifecycle keeps it as a tagged image; then `aws ecr describe-images` confirms prod's repository holds
that digest. Both registries are logged in to with `aws ecr get-login-password` (the caller's
credentials: prod's deploy role, which a cross-account dev repository admits through its
`ecrPullAccountIds` policy).

Why a copy rather than prod pulling from dev's repository: dev is the ephemeral stack (`pulumi destroy`
deletes its repository, and its KMS key, which encrypts the images, is deleted 7 days later; its lifecycle
drops untagged images), while prod's repository is protected, retained on destroy, encrypted with prod's
key and expires nothing prod still runs unless 20 newer images were promoted after it.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.config import ECR_IMAGE_EXAMPLE, EcrImage, parse_ecr_image  # noqa: E402  (the root is on the path only now)

TAG_PREFIX = "promoted-"

Run = Callable[..., subprocess.CompletedProcess[str]]


class PromotionError(Exception):
    """What stops a promotion, said so that the reader knows what to fix."""


def promoted(source: str, account: str, region: str, repository: str) -> tuple[EcrImage, EcrImage]:
    """(the source image, the promoted image: the same digest in `repository` of `account`'s registry)."""
    image = parse_ecr_image(source)
    if image is None:
        raise PromotionError(f"--source {source!r} is not an ECR image pinned by digest, {ECR_IMAGE_EXAMPLE}")
    target = parse_ecr_image(f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}@{image.digest}")
    if target is None:
        raise PromotionError(
            f"--account {account!r}, --region {region!r} and --repository {repository!r} do not name an ECR repository"
        )
    return image, target


def registry(image: EcrImage) -> str:
    return image.uri.partition("/")[0]


def tag(image: EcrImage) -> str:
    """The tag the copy carries: ECR's lifecycle keeps tagged images (the newest 20) and drops untagged ones."""
    return TAG_PREFIX + image.digest.removeprefix("sha256:")[:16]


def copy(source: EcrImage, target: EcrImage, run: Run = subprocess.run) -> None:
    """Copies `source` into `target`'s repository with the same digest, and checks that it is there."""
    if shutil.which("skopeo") is None:
        raise PromotionError("skopeo is not installed (Debian/Ubuntu: apt-get install skopeo)")
    # The stack owns its repository; a stack's very first update creates it (with batchImage unset, or
    # with `--target` on the repository), so a copy into a stack that was never deployed says so.
    found = run(
        [
            "aws",
            "ecr",
            "describe-repositories",
            "--region",
            target.region,
            "--registry-id",
            target.account,
            "--repository-names",
            target.repository,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise PromotionError(
            f"repository {target.repository} does not exist in account {target.account} ({target.region}) or "
            f"cannot be read: deploy the stack once so that it creates it ({found.stderr.strip()})"
        )
    with tempfile.TemporaryDirectory() as tmp:
        auth = str(Path(tmp) / "auth.json")
        for image in (source, target) if registry(source) != registry(target) else (target,):
            password = run(
                ["aws", "ecr", "get-login-password", "--region", image.region],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            run(
                ["skopeo", "login", "--authfile", auth, "--username", "AWS", "--password-stdin", registry(image)],
                input=password,
                capture_output=True,
                text=True,
                check=True,
            )
        destination = target.uri.partition("@")[0]
        run(
            [
                "skopeo",
                "copy",
                "--authfile",
                auth,
                "--all",
                "--preserve-digests",
                f"docker://{source.uri}",
                f"docker://{destination}:{tag(target)}",
            ],
            check=True,
        )
    # The copy said it kept the digest; ECR says which digests the repository holds.
    run(
        [
            "aws",
            "ecr",
            "describe-images",
            "--region",
            target.region,
            "--registry-id",
            target.account,
            "--repository-name",
            target.repository,
            "--image-ids",
            f"imageDigest={target.digest}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )


def main(argv: Sequence[str] | None = None, run: Run = subprocess.run) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["target", "copy"])
    parser.add_argument("--source", required=True, help="dev's batch_image output: <registry>/<repository>@sha256:...")
    parser.add_argument("--account", required=True, help="the account of prod's repository")
    parser.add_argument("--region", required=True, help="the region of prod's repository")
    parser.add_argument("--repository", required=True, help="prod's repository name")
    args = parser.parse_args(argv)
    try:
        source, target = promoted(args.source, args.account, args.region, args.repository)
        if args.command == "copy":
            copy(source, target, run)
    except PromotionError as exc:
        print(f"promote_image: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        # The command up to its first option: `aws ecr describe-images`, `skopeo copy`.
        command = " ".join(itertools.takewhile(lambda arg: not arg.startswith("-"), exc.cmd))
        print(f"promote_image: {command} failed ({exc.returncode}): {exc.stderr or ''}", file=sys.stderr)
        return 1
    print(target.uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())
