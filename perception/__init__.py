"""Sentinel: on-device face perception for the showroom kiosk.

frames → MediaPipe face landmarks (or Tasks blendshapes) → engagement features → QD 1–100 and
signals, only for sessions with consent; frames stay in memory. See docs/perception.md.
"""

from perception.consent import ConsentGate, ConsentRequired, InMemoryConsentGate
from perception.features import FEATURE_NAMES, FaceFeatures
from perception.scoring import SUMMARY_NAMES, RuleScorer, Scorer, Signal
from perception.session import Pipeline, SessionResult, run_session
from perception.settings import SentinelSettings, load_sentinel_settings

__all__ = [
    "FEATURE_NAMES",
    "SUMMARY_NAMES",
    "ConsentGate",
    "ConsentRequired",
    "FaceFeatures",
    "InMemoryConsentGate",
    "Pipeline",
    "RuleScorer",
    "Scorer",
    "SentinelSettings",
    "SessionResult",
    "Signal",
    "load_sentinel_settings",
    "run_session",
]
