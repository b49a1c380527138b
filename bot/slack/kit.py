"""slack_sdk's Block Kit classes that a lead card is made of (its rich text too), checked by the
same validators, found once per class.

slack_sdk's `to_dict()` validates each object against its `@JsonValidator` methods, which it
finds by walking `dir()` of the object and looking at every attribute, on every call: two thirds
of the time it took to build a card (about 0.3 of 0.5 ms), on the way from a lead's POST to its
card. A class's validators never change, so these subclasses look them up once per class and
run exactly those (`tests/bot/test_slack_kit.py` holds them to slack_sdk's own lookup).
"""

from __future__ import annotations

from slack_sdk.models import blocks as sdk

_VALIDATORS: dict[type, tuple[str, ...]] = {}


def validators_of(cls: type) -> tuple[str, ...]:
    """The names of `cls`'s validator methods, as slack_sdk's `validate_json` would find them."""
    found = _VALIDATORS.get(cls)
    if found is None:
        found = tuple(
            name
            for name in dir(cls)
            if not name.startswith("__")
            and callable(member := getattr(cls, name, None))
            and hasattr(member, "validator")
        )
        _VALIDATORS[cls] = found
    return found


class ValidatorsFoundOnce:
    """Mix in before a slack_sdk JsonObject class: `validate_json` runs the validators found
    once for the class."""

    def validate_json(self) -> None:
        for name in validators_of(type(self)):
            getattr(self, name)()


class PlainTextObject(ValidatorsFoundOnce, sdk.PlainTextObject):
    pass


class MarkdownTextObject(ValidatorsFoundOnce, sdk.MarkdownTextObject):
    pass


class HeaderBlock(ValidatorsFoundOnce, sdk.HeaderBlock):
    pass


class SectionBlock(ValidatorsFoundOnce, sdk.SectionBlock):
    pass


class ContextBlock(ValidatorsFoundOnce, sdk.ContextBlock):
    pass


class ActionsBlock(ValidatorsFoundOnce, sdk.ActionsBlock):
    pass


class ButtonElement(ValidatorsFoundOnce, sdk.ButtonElement):
    pass


class ConfirmObject(ValidatorsFoundOnce, sdk.ConfirmObject):
    pass


class RichTextBlock(ValidatorsFoundOnce, sdk.RichTextBlock):
    pass


class RichTextSectionElement(ValidatorsFoundOnce, sdk.RichTextSectionElement):
    pass


class RichTextPreformattedElement(ValidatorsFoundOnce, sdk.RichTextPreformattedElement):
    pass


class RichText(ValidatorsFoundOnce, sdk.RichTextElementParts.Text):
    pass


class RichLink(ValidatorsFoundOnce, sdk.RichTextElementParts.Link):
    pass


class RichUser(ValidatorsFoundOnce, sdk.RichTextElementParts.User):
    pass


class RichDate(ValidatorsFoundOnce, sdk.RichTextElementParts.Date):
    pass


class RichEmoji(ValidatorsFoundOnce, sdk.RichTextElementParts.Emoji):
    pass
