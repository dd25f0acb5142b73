# reduced from cicybot/cloudflare-python-workers@6ca868c4cf9f1e92697e68f38f0e1f70ee3bd763:fastapi/src/tools/get_video_transcript.py
from youtube_transcript_api import YouTubeTranscriptApi
get_video_transcript = None
video_id = None
