"""`bot.slack.kit`: the card's Block Kit classes run exactly the validators slack_sdk's own
lookup finds, and so refuse what slack_sdk refuses."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models import blocks as sdk
from slack_sdk.models.basic_objects import JsonObject

from bot.slack import kit

KIT_CLASSES = [
    (kit.PlainTextObject, sdk.PlainTextObject),
    (kit.MarkdownTextObject, sdk.MarkdownTextObject),
    (kit.HeaderBlock, sdk.HeaderBlock),
    (kit.SectionBlock, sdk.SectionBlock),
    (kit.ContextBlock, sdk.ContextBlock),
    (kit.ActionsBlock, sdk.ActionsBlock),
    (kit.ButtonElement, sdk.ButtonElement),
    (kit.ConfirmObject, sdk.ConfirmObject),
    (kit.RichTextBlock, sdk.RichTextBlock),
    (kit.RichTextSectionElement, sdk.RichTextSectionElement),
    (kit.RichTextPreformattedElement, sdk.RichTextPreformattedElement),
    (kit.RichText, sdk.RichTextElementParts.Text),
    (kit.RichLink, sdk.RichTextElementParts.Link),
    (kit.RichUser, sdk.RichTextElementParts.User),
    (kit.RichDate, sdk.RichTextElementParts.Date),
    (kit.RichEmoji, sdk.RichTextElementParts.Emoji),
]


def _found_by_slack_sdk(instance: JsonObject) -> list[str]:
    """The validators slack_sdk's `validate_json` calls on `instance`, found its own way."""
    called: list[str] = []
    for name in dir(instance):
        if name.startswith("__"):
            continue
        member = getattr(instance, name, None)
        if callable(member) and hasattr(member, "validator"):
            called.append(name)
    return called


def _sample(cls: type) -> JsonObject:
    text = sdk.PlainTextObject(text="Claim")
    samples: dict[type, JsonObject] = {
        sdk.PlainTextObject: kit.PlainTextObject(text="x"),
        sdk.MarkdownTextObject: kit.MarkdownTextObject(text="*x*"),
        sdk.HeaderBlock: kit.HeaderBlock(text=text),
        sdk.SectionBlock: kit.SectionBlock(text=kit.MarkdownTextObject(text="x")),
        sdk.ContextBlock: kit.ContextBlock(elements=[kit.MarkdownTextObject(text="x")]),
        sdk.ActionsBlock: kit.ActionsBlock(elements=[kit.ButtonElement(text=text, value="v")]),
        sdk.ButtonElement: kit.ButtonElement(text=text, action_id="a", value="v"),
        sdk.ConfirmObject: kit.ConfirmObject(title=text, text=kit.MarkdownTextObject(text="x")),
        sdk.RichTextBlock: kit.RichTextBlock(
            elements=[kit.RichTextSectionElement(elements=[kit.RichText(text="x")])]
        ),
        sdk.RichTextSectionElement: kit.RichTextSectionElement(elements=[kit.RichText(text="x")]),
        sdk.RichTextPreformattedElement: kit.RichTextPreformattedElement(
            elements=[kit.RichText(text="x")]
        ),
        sdk.RichTextElementParts.Text: kit.RichText(text="x", style={"bold": True}),
        sdk.RichTextElementParts.Link: kit.RichLink(url="mailto:a@b.example", text="a@b"),
        sdk.RichTextElementParts.User: kit.RichUser(user_id="U1"),
        sdk.RichTextElementParts.Date: kit.RichDate(timestamp=1, format="{time}", fallback="x"),
        sdk.RichTextElementParts.Emoji: kit.RichEmoji(name="wave"),
    }
    return samples[cls]


@pytest.mark.parametrize(("ours", "theirs"), KIT_CLASSES, ids=lambda c: c.__name__)
def test_each_class_runs_the_validators_slack_sdk_finds_and_serialises_the_same(
    ours: type, theirs: type
) -> None:
    sample = _sample(theirs)
    assert isinstance(sample, ours) and isinstance(sample, theirs)
    assert kit.validators_of(ours) == tuple(_found_by_slack_sdk(sample))
    assert sample.to_dict() == theirs.to_dict(sample)  # the same JSON, the same validation


@pytest.mark.parametrize(
    "build",
    [
        lambda: kit.HeaderBlock(text=kit.PlainTextObject(text="x" * 151)),
        lambda: kit.SectionBlock(fields=[kit.MarkdownTextObject(text="x")] * 11),
        lambda: kit.SectionBlock(text=kit.MarkdownTextObject(text="x" * 3001)),
        lambda: kit.ButtonElement(text=kit.PlainTextObject(text="Claim"), value="x" * 2001),
        lambda: kit.ActionsBlock(block_id="b" * 256, elements=[]),
    ],
    ids=["header over 150", "11 fields", "text over 3000", "value over 2000", "block id over 255"],
)
def test_what_slack_refuses_is_refused_before_it_is_sent(build: object) -> None:
    with pytest.raises(SlackObjectFormationError):
        build().to_dict()  # type: ignore[operator]
