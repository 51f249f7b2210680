"""Adapters that run the real generators (Wav2Lip, VideoReTalking, Audio2Head, MakeItTalk) from a user's checkout."""
