"""The aiortc peer's reading of m-section directions, which its negotiationneeded rule uses."""

from rig.peers.aiortc_peer import section_directions

SDP = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n"
       "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n"
       "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\na=mid:1\r\n"
       "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:2\r\na=sendonly\r\n")


def test_each_mid_gets_its_sections_direction_and_sendrecv_when_none_is_written() -> None:
    assert section_directions(SDP) == {"0": "sendrecv", "1": "recvonly", "2": "sendonly"}


def test_session_level_lines_are_not_a_section() -> None:
    assert section_directions("v=0\r\na=sendonly\r\n") == {}
