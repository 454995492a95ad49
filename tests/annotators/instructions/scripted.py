"""Scripted tables with known answers: one 3-second video at 10 fps, 640x480.

- ``v:dog1``: visible frames 5–14 and 18–20 (hidden 15–17), box moving right 10 px/frame;
- ``v:dog2``: visible frames 10–29, static box in the bottom right;
- ``v:cat``:  visible frames 0–29, static box in the top left; entity "the black cat",
  colour black.
Events: dog1 "runs to the left" frames 5–10, dog1 "sits down" frames 12–14, cat "sleeps"
frames 0–29.
"""

from __future__ import annotations

from tubelet.schemas.records import Entity, Event, Tubelet, TubeletFrame

FPS, W, H, N = 10.0, 640, 480, 30
VIDEO = "v"


def box_dog1(f: int) -> list[float]:
    return [10.0 * f, 200.0, 10.0 * f + 50, 260.0]


BOX_DOG2 = [500.0, 380.0, 600.0, 470.0]
BOX_CAT = [20.0, 30.0, 120.0, 100.0]


def _tube(tid: str, category: str, frames: list[TubeletFrame]) -> Tubelet:
    return Tubelet(
        tubelet_id=f"{VIDEO}:{tid}",
        video_id=VIDEO,
        category=category,
        source="script",
        track_id=tid,
        fps=FPS,
        width=W,
        height=H,
        frames=frames,
    )


def tubelets() -> list[Tubelet]:
    dog1 = [
        TubeletFrame(f, f / FPS, box_dog1(f) if f <= 14 or f >= 18 else box_dog1(14), visible=not 15 <= f <= 17)
        for f in range(5, 21)
    ]
    dog2 = [TubeletFrame(f, f / FPS, list(BOX_DOG2)) for f in range(10, 30)]
    cat = [TubeletFrame(f, f / FPS, list(BOX_CAT)) for f in range(0, 30)]
    return [_tube("dog1", "dog", dog1), _tube("dog2", "dog", dog2), _tube("cat", "cat", cat)]


def entities() -> list[Entity]:
    return [
        Entity(
            entity_id=f"{VIDEO}:cat:entity",
            video_id=VIDEO,
            tubelet_id=f"{VIDEO}:cat",
            category="cat",
            referring_expression="the black cat",
            attributes={"colour": "black"},
        )
    ]


def events() -> list[Event]:
    def ev(n: int, tid: str, s: int, e: int, text: str) -> Event:
        return Event(
            event_id=f"{VIDEO}:event:{tid}:{n}",
            video_id=VIDEO,
            tubelet_ids=[f"{VIDEO}:{tid}"],
            start_s=s / FPS,
            end_s=e / FPS,
            start_frame=s,
            end_frame=e,
            text=text,
        )

    return [ev(0, "dog1", 5, 10, "runs to the left"), ev(1, "dog1", 12, 14, "sits down"), ev(0, "cat", 0, 29, "sleeps")]
