"""NASDAQ ITCH 5.0 importer: real BinaryFILE heads, real Omi pcaps, hand-made messages.

Expected values were read by hand from the bytes with the layouts of PROTOCOLS.md §1-2.
"""

from __future__ import annotations

import datetime as dt
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from framework.core.errors import ConfigError, DataError, FormatError
from framework.core.events import (
    BUY,
    FLAG_AUCTION,
    FLAG_HIDDEN,
    FLAG_LAST,
    FLAG_NON_PRINTABLE,
    FLAG_REPLACE,
    KIND_ADD,
    KIND_CANCEL,
    KIND_DELETE,
    KIND_EXECUTE,
    KIND_STATUS,
    KIND_TRADE,
    NO_SIDE,
    SELL,
    STATUS_CLOSED,
    STATUS_HALTED,
    STATUS_INFO,
    STATUS_OPEN,
    STATUS_PAUSED,
    STATUS_START_OF_MESSAGES,
)
from framework.core.timeutil import midnight_ns
from framework.ingest.base import ImportOptions, get_importer
from framework.ingest.itch import decode_binaryfile, import_itch
from framework.ingest.itch_nb import MSG_OK, MSG_SIZES
from framework.ingest.pcap import frame_pcap

HEADS = "itch50_binaryfile_real_heads"
OMI = "itch50_moldudp64_pcaps_omi/Nasdaq.Equities.TotalView.Itch.v5.0"
OMI_0822 = "itch50_moldudp64_pcaps_omi/Nasdaq.Equities.TotalView.Itch.v5.0.20230822"
DAY = dt.date(2023, 8, 22)
MIDNIGHT = midnight_ns(DAY, "America/New_York")


# --- building messages by hand from the spec layouts ----------------------------------------
def hdr(t: str, locate: int = 7, ts: int = 34_200_000_000_000, track: int = 0) -> bytes:
    return t.encode() + struct.pack(">HH", locate, track) + ts.to_bytes(6, "big")


def stock(s: str) -> bytes:
    return s.ljust(8).encode()


def msg_r(locate: int, sym: str, lot: int = 100) -> bytes:
    return (hdr("R", locate) + stock(sym) + b"Q " + struct.pack(">I", lot) + b"NCZ P N1N"
            + struct.pack(">I", 0) + b"N")


def msg_a(
    ref: int, side: str, shares: int, price: int, locate: int = 7, sym: str = "TEST",
    ts: int = 34_200_000_000_000,
) -> bytes:
    return (hdr("A", locate, ts) + struct.pack(">Q", ref) + side.encode()
            + struct.pack(">I", shares) + stock(sym) + struct.pack(">I", price))


def msg_e(ref: int, shares: int, locate: int = 7, match: int = 1) -> bytes:
    return hdr("E", locate) + struct.pack(">QIQ", ref, shares, match)


def msg_x(ref: int, shares: int, locate: int = 7) -> bytes:
    return hdr("X", locate) + struct.pack(">QI", ref, shares)


def msg_d(ref: int, locate: int = 7) -> bytes:
    return hdr("D", locate) + struct.pack(">Q", ref)


def binaryfile(*msgs: bytes) -> bytes:
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def decode(*msgs: bytes):  # -> ItchDecoded
    dec, _end = decode_binaryfile(np.frombuffer(binaryfile(*msgs), np.uint8), base_ns=MIDNIGHT)
    return dec


def write(tmp_path: Path, data: bytes, name: str = "08222023.NASDAQ_ITCH50") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_every_spec_message_length_matches_the_protocol_table() -> None:
    assert MSG_SIZES == {
        "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
        "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
        "Q": 40, "I": 50, "N": 20, "B": 19,
    }
    assert len(msg_r(1, "A")) == 39
    assert len(msg_a(1, "B", 1, 1)) == 36


def test_importer_is_registered_as_itch() -> None:
    assert get_importer("itch") is import_itch


# --- real BinaryFILE heads ------------------------------------------------------------------
def test_lukefasanello_file_yields_101_messages_and_reports_the_cut_tail(shared_data: Path):
    path = shared_data / HEADS / "LukeFasanello_ItchParser_tests_sample.itch"
    res = import_itch([path], ImportOptions(date=dt.date(2019, 12, 30)))
    rep = res.report
    assert rep.rows_read == 101
    assert rep.rows_rejected == 0
    # the author cut the file at 4 KiB: the 15 bytes of the last message are damage
    assert rep.bytes_skipped == {"bytes of a message cut by the end of the file": 15}
    assert rep.damaged == {"bytes of a message cut by the end of the file":
                           "LukeFasanello_ItchParser_tests_sample.itch offset 4,081"}
    dec, end = decode_binaryfile(np.fromfile(path, np.uint8))
    assert end == 4081
    assert dec.type_counts() == {"S": 1, "R": 98, "H": 1, "Y": 1}
    assert len(res.instruments) == 98
    # R: locate 1 'A', locate 35-37 'ABR-A/B/C' (bytes 52 00 23 ... 41 42 52 2d 41)
    by_locate = {i.extra["locate"]: i for i in res.instruments}
    assert by_locate[1].symbol == "A"
    assert by_locate[35].symbol == "ABR-A"
    assert by_locate[37].symbol == "ABR-C"
    assert by_locate[1].extra["round_lot_size"] == 100
    assert by_locate[1].tick_size == by_locate[1].tick_size.__class__("0.0001")
    assert str(by_locate[1].lot_size) == "1"


def test_bekele_file_yields_1000_messages_with_named_instruments(shared_data: Path) -> None:
    path = shared_data / HEADS / "B-Bekele_ITCH-Parser_data_sample.itch"
    res = import_itch([path], ImportOptions(date=dt.date(2019, 12, 30)))
    assert res.report.rows_read == 1000
    assert res.report.rows_rejected == 0
    assert not any("cut message" in n for n in res.report.notes)
    dec, end = decode_binaryfile(np.fromfile(path, np.uint8))
    assert end == path.stat().st_size == 40_874
    assert dec.type_counts() == {"S": 1, "R": 993, "H": 3, "Y": 3}
    by_locate = {i.extra["locate"]: i for i in res.instruments}
    assert len(by_locate) == 993
    assert (by_locate[1].symbol, by_locate[2].symbol, by_locate[3].symbol) == ("A", "AA", "AAAU")
    assert by_locate[32].symbol == "ABR-A"
    # 'ACEL+' (locate 49) is not a valid instrument name: hex-escaped, ITCH name kept
    assert by_locate[49].symbol == "ACEL_2B"
    assert by_locate[49].extra["itch_symbol"] == "ACEL+"
    assert all(i.venue == "XNAS" and i.currency == "USD" for i in res.instruments)
    # one day per symbol; the start-of-messages system event is in every one
    assert len(res.days) == 993
    day_a = next(d for d in res.days if d.instrument.symbol == "A")
    assert day_a.date == dt.date(2019, 12, 30)
    # S 'O' (system, copied), R, H 'T' (trading), Y '0' (no Reg SHO restriction)
    assert day_a.events["kind"].tolist() == [KIND_STATUS] * 4
    assert day_a.events["qty"].tolist() == [
        STATUS_START_OF_MESSAGES, STATUS_INFO, STATUS_OPEN, STATUS_INFO]
    assert [int(x) >> 56 for x in day_a.events["order_id"]] == [ord(c) for c in "SRHY"]
    assert (day_a.events["instrument"] == 0).all()
    # Bekele's S 'O': bytes 53 0000 0000 0a11ea0e8c43 4f -> 03:04:32.057543747 New York
    s_ts = int(day_a.events["exch_ts"][0]) - midnight_ns(dt.date(2019, 12, 30), "America/New_York")
    assert s_ts == 0x0A11EA0E8C43 == ((3 * 60 + 4) * 60 + 32) * 10**9 + 57_543_747


def test_symbol_option_keeps_only_that_symbol(shared_data: Path) -> None:
    path = shared_data / HEADS / "B-Bekele_ITCH-Parser_data_sample.itch"
    res = import_itch([path], ImportOptions(date=dt.date(2019, 12, 30), symbol="ACEL+"))
    assert [d.instrument.symbol for d in res.days] == ["ACEL_2B"]
    with pytest.raises(DataError, match="'NOPE' is not in the input"):
        import_itch([path], ImportOptions(date=dt.date(2019, 12, 30), symbol="NOPE"))


def test_gzip_input_is_detected_by_magic_bytes(shared_data: Path, tmp_path: Path) -> None:
    raw = (shared_data / HEADS / "LukeFasanello_ItchParser_tests_sample.itch").read_bytes()
    p = write(tmp_path, gzip.compress(raw), "12302019.NASDAQ_ITCH50.gz")
    res = import_itch([p], ImportOptions())
    assert res.report.rows_read == 101
    assert res.days[0].date == dt.date(2019, 12, 30)  # date from the MMDDYYYY file name


def test_missing_date_raises_config_error_asking_for_date(shared_data: Path) -> None:
    path = shared_data / HEADS / "LukeFasanello_ItchParser_tests_sample.itch"
    with pytest.raises(ConfigError, match="--date"):
        import_itch([path], ImportOptions())


# --- real pcaps -----------------------------------------------------------------------------
def test_every_omi_itch_pcap_decodes_with_only_explained_rejects(shared_data: Path) -> None:
    pcaps = sorted((shared_data / OMI).glob("*.pcap")) + sorted(
        (shared_data / OMI_0822).glob("*.pcap")
    )
    assert len(pcaps) == 23
    for p in pcaps:
        res = import_itch([p], ImportOptions())
        rep = res.report
        # E/C/X/D/U of orders added before the capture started are the only rejects
        assert set(rep.rejected_rows) <= {"unknown order id"}, (p.name, rep.rejected_rows)
        assert not rep.rejected, p.name
        assert not rep.damaged, p.name
        n_msgs = len(frame_pcap(p.read_bytes(), p.name).offsets)
        assert rep.rows_read == n_msgs
        # each accepted message made one event (no U is accepted, no system copies here)
        assert sum(len(d.events) for d in res.days) == n_msgs - rep.rows_rejected, p.name
        for d in res.days:
            assert d.date == DAY
            assert (np.diff(d.events["local_ts"]) >= 0).all()
            assert int(np.count_nonzero(d.events["flags"] & FLAG_LAST)) == len(d.events)


def test_ivoo_add_order_fields_match_the_bytes(shared_data: Path) -> None:
    res = import_itch([shared_data / OMI_0822 / "AddOrderNoMPID.pcap"], ImportOptions())
    day = next(d for d in res.days if d.instrument.symbol == "IVOO")
    ev = day.events[0]
    assert ev["kind"] == KIND_ADD
    assert ev["side"] == BUY
    assert ev["qty"] == 1600
    assert ev["price"] == 873_900  # 87.3900 in ticks of 0.0001
    assert day.instrument.ticks_to_price(int(ev["price"])) == 87.39
    assert ev["order_id"] == 23_508_286  # 0x166b53e
    assert ev["exch_ts"] - MIDNIGHT == ((9 * 60 + 29) * 60 + 59) * 10**9 + 999_894_278
    # local_ts is the pcap capture time (13:30:00.000059094 UTC)
    assert ev["local_ts"] == 1_692_711_000_000_059_094
    assert ev["flags"] == FLAG_LAST
    assert day.instrument.extra["locate"] == 5528


def test_moldudp64_header_fields_are_read(shared_data: Path) -> None:
    data = (shared_data / OMI / "AddOrderNoMpidAttributionMessage.pcap").read_bytes()
    fr = frame_pcap(data, "x.pcap")
    assert fr.session == [b"000010059B"]
    assert fr.sequence.tolist() == [0xE12F59]
    assert fr.lengths.tolist() == [36]


def test_multiple_packets_pcap_has_a_packet_of_38_messages(shared_data: Path) -> None:
    path = shared_data / OMI / "Multiple.Packets.pcap"
    fr = frame_pcap(path.read_bytes(), path.name)
    counts = np.bincount(fr.packet)
    assert counts.tolist() == [1, 38]
    res = import_itch([path], ImportOptions())
    assert res.report.rejected_rows == {"unknown order id": 1}  # the lone D of an earlier order
    (day,) = res.days
    assert day.instrument.symbol == "META"
    assert len(day.events) == 38
    assert (day.events["kind"] == KIND_ADD).all()
    assert int(np.count_nonzero(day.events["flags"] & FLAG_LAST)) == 38
    # the packets are not consecutive: the gap is reported
    assert any("gap" in n and "000010059B" in n for n in res.report.notes)


def test_omi_status_messages_map_to_status_codes(shared_data: Path) -> None:
    sysday = import_itch([shared_data / OMI_0822 / "SystemEvent.pcap"], ImportOptions()).days[0]
    assert sysday.instrument.symbol == "SYSTEM"
    ev = sysday.events[0]
    assert (ev["kind"], ev["qty"]) == (KIND_STATUS, STATUS_OPEN)  # S 'Q' start of market hours
    assert ev["order_id"] == (ord("S") << 56) | (ord("Q") << 48)
    assert ev["exch_ts"] - MIDNIGHT == 34_200_000_070_384  # 09:30:00.000070384

    res = import_itch([shared_data / OMI_0822 / "StockTradingAction.pcap"], ImportOptions())
    zxzzt = next(d for d in res.days if d.instrument.symbol == "ZXZZT").events[0]
    assert (zxzzt["kind"], zxzzt["qty"]) == (KIND_STATUS, STATUS_PAUSED)  # H 'P' reason LUDP
    assert int(zxzzt["order_id"]).to_bytes(8, "big") == b"HP LUDP\x00"

    res = import_itch([shared_data / OMI_0822 / "RegSHORestriction.pcap"], ImportOptions())
    sopa = next(d for d in res.days if d.instrument.symbol == "SOPA").events[0]
    assert (sopa["qty"], int(sopa["order_id"]) >> 48) == (STATUS_INFO, (ord("Y") << 8) | ord("1"))

    res = import_itch([shared_data / OMI_0822 / "LULDAuctionCollar.pcap"], ImportOptions())
    j = next(d for d in res.days if d.instrument.symbol == "ZXZZT").events[0]
    assert (j["qty"], j["price"]) == (STATUS_INFO, 133_400)  # reference price 13.34

    res = import_itch([shared_data / OMI / "NetOrderImbalanceIndicatorMessage.pcap"],
                      ImportOptions())
    i = res.days[0].events[0]
    assert res.days[0].instrument.symbol == "MDC"
    assert (i["qty"], i["price"]) == (STATUS_INFO, 464_400)  # current reference price 46.44

    res = import_itch([shared_data / OMI_0822 / "MarketParticipantPosition.pcap"],
                      ImportOptions())
    fdls = next(d for d in res.days if d.instrument.symbol == "FDLS").events[0]
    assert int(fdls["order_id"]).to_bytes(8, "big") == b"LMAXMYNA"


def test_omi_trades_decode_with_hand_checked_values(shared_data: Path) -> None:
    res = import_itch([shared_data / OMI_0822 / "NonCrossTrade.pcap"], ImportOptions())
    googl = next(d for d in res.days if d.instrument.symbol == "GOOGL").events[0]
    assert googl["kind"] == KIND_TRADE
    assert (googl["qty"], googl["price"], googl["side"]) == (100, 1_284_600, NO_SIDE)
    assert googl["flags"] == FLAG_HIDDEN | FLAG_LAST

    res = import_itch([shared_data / OMI_0822 / "CrossTrade.pcap"], ImportOptions())
    ibtg = next(d for d in res.days if d.instrument.symbol == "IBTG").events[0]
    # Q: shares 0x1503 = 5379 (8 bytes), cross price 0x36e20 = 22.4800, cross type 'O'
    assert (ibtg["kind"], ibtg["qty"], ibtg["price"]) == (KIND_TRADE, 5379, 224_800)
    assert ibtg["flags"] == FLAG_AUCTION | FLAG_LAST
    assert int(ibtg["order_id"]) >> 48 == (ord("Q") << 8) | ord("O")
    # BAC-Q's opening cross had no volume: kept as information, not as a zero-size trade
    bacq = next(d for d in res.days if d.instrument.symbol == "BAC-Q").events[0]
    assert (bacq["kind"], bacq["qty"], bacq["price"]) == (KIND_STATUS, STATUS_INFO, 0)
    assert bacq["flags"] == FLAG_AUCTION | FLAG_LAST

    res = import_itch([shared_data / OMI_0822 / "AddOrderWithMPID.pcap"], ImportOptions())
    casy = next(d for d in res.days if d.instrument.symbol == "CASY").events[0]
    assert (casy["kind"], casy["side"], casy["qty"], casy["price"]) == (KIND_ADD, SELL, 100,
                                                                         2_555_200)
    assert casy["order_id"] == 18_923_125


def _real_message(shared_data: Path, name: str) -> bytes:
    data = (shared_data / OMI_0822 / name).read_bytes()
    fr = frame_pcap(data, name)
    o, n = int(fr.offsets[0]), int(fr.lengths[0])
    return data[o : o + n]


def test_real_order_messages_decode_against_their_resting_order(shared_data: Path) -> None:
    # The pcaps' E/C/X/D/U name orders added before the capture; give each its add first.
    e = _real_message(shared_data, "OrderExecuted.pcap")  # locate 2345, ref 23499418, 25 sh
    dec = decode(msg_a(23_499_418, "S", 100, 1_000_000, locate=2345), e)
    ex = dec.events[1]
    assert (ex["kind"], ex["qty"], ex["price"], ex["side"]) == (KIND_EXECUTE, 25, 1_000_000, SELL)
    assert ex["order_id"] == 23_499_418
    assert ex["instrument"] == 2345

    c = _real_message(shared_data, "OrderExecutedWithPrice.pcap")  # 4926 @ 22.48, 'N'
    dec = decode(msg_a(19_993_566, "B", 5000, 224_700, locate=0x13E4), c)
    cx = dec.events[1]
    assert (cx["kind"], cx["qty"], cx["price"], cx["side"]) == (KIND_EXECUTE, 4926, 224_800, BUY)
    assert cx["flags"] == FLAG_NON_PRINTABLE | FLAG_LAST

    x = _real_message(shared_data, "OrderCancel.pcap")  # ref 33823232, 100 shares
    dec = decode(msg_a(33_823_232, "B", 300, 50_000, locate=0x24C5), x)
    assert (dec.events[1]["kind"], dec.events[1]["qty"]) == (KIND_CANCEL, 100)

    d = _real_message(shared_data, "OrderDelete.pcap")  # ref 23442714
    dec = decode(msg_a(23_442_714, "S", 300, 50_000, locate=0x0D19), d)
    assert (dec.events[1]["kind"], dec.events[1]["order_id"]) == (KIND_DELETE, 23_442_714)

    u = _real_message(shared_data, "OrderReplace.pcap")  # 15108479 -> 21361351, 100 @ 106.26
    dec = decode(msg_a(15_108_479, "S", 200, 1_062_700, locate=0x1DB3), u)
    old, new = dec.events[1], dec.events[2]
    assert (old["kind"], old["order_id"], old["flags"]) == (KIND_DELETE, 15_108_479, FLAG_REPLACE)
    assert (new["kind"], new["order_id"], new["qty"], new["price"], new["side"]) == (
        KIND_ADD, 21_361_351, 100, 1_062_600, SELL)
    assert new["flags"] == FLAG_REPLACE | FLAG_LAST


def test_pcap_with_a_non_udp_packet_skips_it_with_a_note(shared_data: Path, tmp_path: Path):
    data = bytearray((shared_data / OMI_0822 / "AddOrderNoMPID.pcap").read_bytes())
    # first packet: frame at 24+16; VLAN tag -> IPv4 at 14+4; protocol byte at +9
    ip = 24 + 16 + 18
    assert data[ip] == 0x45
    assert data[ip + 9] == 17
    data[ip + 9] = 6  # TCP
    res = import_itch([write(tmp_path, bytes(data), "x.pcap")], ImportOptions())
    assert res.report.rows_read == 4
    assert any("1 packet(s) skipped: not UDP (IP protocol 6)" in n for n in res.report.notes)
    # the capture's IPv4 checksums are all wrong (rewritten): not verified, not damage
    assert not res.report.damaged
    assert res.report.bytes_skipped == {"packets that are not MoldUDP64 over UDP": 16 + 104}


def test_ouch_tcp_capture_passed_as_itch_pcap_is_a_format_error(shared_data: Path) -> None:
    path = shared_data / "itch50_moldudp64_pcaps_omi/Nasdaq.Nsm.Ouch.v5.0/EnterOrderMessage.pcap"
    with pytest.raises(FormatError, match="no MoldUDP64 messages"):
        import_itch([path], ImportOptions(extra={"pcap": True}))


def test_duplicate_moldudp64_packet_is_dropped_and_noted(shared_data: Path, tmp_path: Path):
    data = (shared_data / OMI / "AddOrderNoMpidAttributionMessage.pcap").read_bytes()
    twice = data + data[24:]  # the same packet again (an A/B line repeat)
    res = import_itch([write(tmp_path, twice, "x.pcap")], ImportOptions())
    assert res.report.rows_read == 2
    assert res.report.rejected_rows == {
        "duplicate MoldUDP64 message (same session, sequence and bytes)": 1
    }
    assert any("1 duplicate message(s) dropped" in n for n in res.report.notes)
    assert len(res.days[0].events) == 1


# --- hand-made messages: book semantics and rejects -----------------------------------------
def test_execute_uses_the_resting_price_and_full_fill_kills_the_order() -> None:
    dec = decode(msg_a(5, "B", 300, 1_234_500), msg_e(5, 100), msg_e(5, 200), msg_x(5, 1))
    ev = dec.events
    assert ev["kind"].tolist() == [KIND_ADD, KIND_EXECUTE, KIND_EXECUTE]
    assert ev["price"].tolist() == [1_234_500] * 3
    assert ev["side"].tolist() == [BUY] * 3
    assert dec.status.tolist() == [MSG_OK, MSG_OK, MSG_OK, 5]  # the X names a dead order


def test_delete_of_unknown_order_is_rejected_with_reason(tmp_path: Path) -> None:
    p = write(tmp_path, binaryfile(msg_a(1, "S", 10, 500), msg_d(99), msg_d(1)))
    res = import_itch([p], ImportOptions())
    assert res.report.rejected_rows == {"unknown order id": 1}
    assert res.days[0].events["kind"].tolist() == [KIND_ADD, KIND_DELETE]
    assert res.days[0].instrument.symbol == "TEST"  # from the A's Stock field


def test_over_cancel_duplicate_add_and_bad_side_are_rejected_with_reasons(tmp_path: Path):
    p = write(tmp_path, binaryfile(
        msg_a(1, "S", 10, 500), msg_x(1, 11), msg_a(1, "B", 5, 500), msg_a(2, "Z", 5, 500),
        msg_a(3, "B", 0, 500),
    ))
    rep = import_itch([p], ImportOptions()).report
    assert rep.rejected_rows == {
        "execute/cancel larger than the order's remaining shares": 1,
        "duplicate order id": 1,
        "buy/sell indicator is neither B nor S": 1,
        "non-positive size": 1,
    }
    # a side byte other than B/S is not what ITCH sends: damage, not just a reject
    assert list(rep.damaged) == ["buy/sell indicator is neither B nor S"]


def test_coarser_tick_size_rejects_off_grid_prices(tmp_path: Path) -> None:
    p = write(tmp_path, binaryfile(msg_a(1, "B", 10, 1_234_500), msg_a(2, "B", 10, 1_234_567)))
    res = import_itch([p], ImportOptions(extra={"tick_size": "0.01"}))
    assert res.report.rejected_rows == {"price off tick grid": 1}
    assert res.days[0].events["price"].tolist() == [12_345]
    with pytest.raises(ConfigError, match="multiple of ITCH's price unit"):
        import_itch([p], ImportOptions(extra={"tick_size": "0.00001"}))


def test_broken_framing_is_skipped_to_the_next_two_messages_that_frame(tmp_path: Path) -> None:
    a1, a2, d1, d2 = msg_a(1, "B", 10, 500), msg_a(2, "S", 5, 600), msg_d(1), msg_d(2)
    good = binaryfile(a1, a2, d1, d2)
    cut = len(binaryfile(a1))
    # an unknown type, a D one byte short (the next length prefix is then misread) and an
    # inserted byte: each breaks the framing where it starts
    for junk in (binaryfile(b"Z" + bytes(10)), binaryfile(msg_d(1)[:-1]), b"\x07"):
        p = write(tmp_path, good[:cut] + junk + good[cut:])
        res = import_itch([p], ImportOptions())
        rep = res.report
        assert rep.rows_read == 4
        assert sum(rep.bytes_skipped.values()) == len(junk)
        assert next(iter(rep.damaged.values())) == f"08222023.NASDAQ_ITCH50 offset {cut:,}"
        assert any(f"framing break(s) at offset(s) {cut:,} ({len(junk)} bytes)" in n
                   for n in rep.notes)
        assert res.days[0].events["kind"].tolist() == [KIND_ADD, KIND_ADD, KIND_DELETE,
                                                       KIND_DELETE]
    # a flipped length byte: the message it frames is lost, the walk resumes after it
    flipped = bytearray(good)
    flipped[cut] ^= 0x40
    dec, end = decode_binaryfile(np.frombuffer(bytes(flipped), np.uint8))
    assert end == len(good)
    assert dec.breaks.tolist() == [[cut, len(binaryfile(a2))]]
    assert dec.events["order_id"].tolist() == [1, 1]  # A 1, D 1 (D 2 names a lost order)


def test_framing_damage_fails_the_import_unless_partial_is_allowed(tmp_path: Path) -> None:
    from framework.ingest.base import run_import

    p = write(tmp_path, b"\xff" + binaryfile(msg_a(1, "B", 10, 500), msg_d(1)))
    with pytest.raises(DataError, match=r"damaged input: bytes that frame no ITCH 5\.0 message"
                                        r".*\(1 bytes, first at 08222023\.NASDAQ_ITCH50 "
                                        r"offset 0\); nothing was written.*--allow-partial"):
        run_import("itch", [p], ImportOptions())
    res = run_import("itch", [p], ImportOptions(extra={"allow_partial": True}))
    assert res.report.rows_read == 2
    assert sum(res.report.bytes_skipped.values()) == 1
    assert res.days[0].events["kind"].tolist() == [KIND_ADD, KIND_DELETE]


def test_stock_field_with_unprintable_bytes_is_damage_never_a_name(tmp_path: Path) -> None:
    bad = bytearray(msg_r(3, "ABC"))
    bad[12] = 0x07  # the second letter of the Stock field
    p = write(tmp_path, binaryfile(bytes(bad), msg_a(1, "B", 1, 1, locate=3, sym="ABC")))
    res = import_itch([p], ImportOptions())
    assert res.report.rejected_rows == {"Stock field with unprintable bytes": 1}
    assert "Stock field with unprintable bytes" in res.report.damaged
    assert [d.instrument.symbol for d in res.days] == ["ABC"]  # named by the clean A


def test_locates_resolving_to_one_name_share_one_day(tmp_path: Path) -> None:
    # locate 9 is a damaged copy of 7 (no directory for either): one day, never two
    p = write(tmp_path, binaryfile(msg_a(1, "B", 1, 100), msg_a(2, "B", 1, 100, locate=9),
                                   msg_d(1), msg_d(2, locate=9)))
    res = import_itch([p], ImportOptions())
    (day,) = res.days
    assert day.instrument.symbol == "TEST"
    assert day.events["order_id"].tolist() == [1, 2, 1, 2]
    assert any("locates 7, 9 all name TEST" in n for n in res.report.notes)


def test_replace_carries_side_and_locate_and_one_flag_last_per_message() -> None:
    u = hdr("U", 7) + struct.pack(">QQII", 1, 2, 50, 600)
    dec = decode(msg_a(1, "S", 10, 500), u, msg_e(2, 50))
    ev = dec.events
    assert ev["kind"].tolist() == [KIND_ADD, KIND_DELETE, KIND_ADD, KIND_EXECUTE]
    assert ev["side"].tolist() == [SELL] * 4
    assert ev["price"].tolist() == [500, 500, 600, 600]
    assert [int(f) & FLAG_LAST for f in ev["flags"]] == [1, 0, 1, 1]


def test_spec_only_message_types_decode_as_status_events() -> None:
    v = hdr("V", 0) + bytes(24)
    w = hdr("W", 0) + b"1"
    k = hdr("K", 7) + stock("NEWCO") + struct.pack(">I", 36000) + b"A" + struct.pack(">I", 200_000)
    n = hdr("N", 7) + stock("TEST") + b"Y"
    b = hdr("B", 7) + struct.pack(">Q", 123_456)
    h = hdr("h", 7) + stock("TEST") + b"QH"
    s_m = hdr("S", 0) + b"M"
    dec = decode(v, w, k, n, b, h, s_m)
    assert (dec.status == MSG_OK).all()
    ev = dec.events
    assert (ev["kind"] == KIND_STATUS).all()
    assert ev["qty"].tolist() == [STATUS_INFO] * 5 + [STATUS_HALTED, STATUS_CLOSED]
    assert ev["price"][2] == 200_000  # IPO price 20.0000
    assert int(ev["order_id"][4]) == (ord("B") << 56) | 123_456  # broken trade match number
    assert ev["instrument"].tolist() == [0, 0, 7, 7, 7, 7, 0]


def test_system_events_are_copied_into_every_symbol_day(tmp_path: Path) -> None:
    s_o = hdr("S", 0, ts=1) + b"O"
    p = write(tmp_path, binaryfile(s_o, msg_r(1, "AAA"), msg_r(2, "BBB"),
                                   msg_a(1, "B", 1, 1, locate=2)))
    res = import_itch([p], ImportOptions())
    assert [d.instrument.symbol for d in res.days] == ["AAA", "BBB"]
    for d in res.days:
        assert d.events["qty"][0] == STATUS_START_OF_MESSAGES
    assert res.days[1].events["kind"].tolist() == [KIND_STATUS, KIND_STATUS, KIND_ADD]


def test_locate_without_any_name_is_stored_as_locate_n(tmp_path: Path) -> None:
    p = write(tmp_path, binaryfile(msg_a(1, "B", 1, 1, locate=9), msg_e(1, 1, locate=9),
                                   msg_a(2, "B", 1, 1, locate=9, sym="")))
    # the first A names the locate 'TEST'; a stock without one gets LOCATE<n>
    p2 = write(tmp_path, binaryfile(hdr("D", 4) + struct.pack(">Q", 1),
                                    msg_a(3, "B", 1, 1, locate=4, sym="")), "b_08222023.itch")
    assert import_itch([p], ImportOptions()).days[0].instrument.symbol == "TEST"
    res = import_itch([p2], ImportOptions())
    assert res.days[0].instrument.symbol == "LOCATE4"
    assert any("LOCATE<n>" in n for n in res.report.notes)
    assert import_itch([p2], ImportOptions(symbol="XYZ")).days[0].instrument.symbol == "XYZ"
    # a locate the input does name is not renamed by --symbol: it just does not match
    with pytest.raises(DataError, match="'XYZ' is not in the input"):
        import_itch([p], ImportOptions(symbol="XYZ"))


# --- bad input ------------------------------------------------------------------------------
def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        import_itch([tmp_path / "nope.itch"], ImportOptions(date=DAY))


def test_empty_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="empty file"):
        import_itch([write(tmp_path, b"")], ImportOptions())


def test_lobster_csv_passed_as_itch_is_a_format_error(shared_data: Path) -> None:
    csv = next((shared_data / "lobster_AMZN_2012-06-21_L1_fullday").glob("*message*.csv"))
    with pytest.raises(FormatError, match=r"not NASDAQ ITCH 5\.0 BinaryFILE"):
        import_itch([csv], ImportOptions(date=DAY))


def test_bytes_that_are_not_a_pcap_given_pcap_option_are_a_format_error(tmp_path: Path):
    with pytest.raises(FormatError, match="not a libpcap capture"):
        import_itch([write(tmp_path, binaryfile(msg_d(1)))], ImportOptions(extra={"pcap": True}))


def _to_big_endian_microseconds(data: bytes) -> bytes:
    """Rewrite a little-endian nanosecond pcap as a big-endian microsecond one."""
    magic, vmaj, vmin, zone, sigfigs, snap, link = struct.unpack_from("<IHHiIII", data, 0)
    assert magic == 0xA1B23C4D
    out = [struct.pack(">IHHiIII", 0xA1B2C3D4, vmaj, vmin, zone, sigfigs, snap, link)]
    pos = 24
    while pos < len(data):
        sec, ns, incl, orig = struct.unpack_from("<IIII", data, pos)
        out.append(struct.pack(">IIII", sec, ns // 1000, incl, orig))
        out.append(data[pos + 16 : pos + 16 + incl])
        pos += 16 + incl
    return b"".join(out)


def test_big_endian_microsecond_and_gzipped_pcaps_decode_the_same(
    shared_data: Path, tmp_path: Path
) -> None:
    data = (shared_data / OMI_0822 / "AddOrderNoMPID.pcap").read_bytes()
    be = write(tmp_path, gzip.compress(_to_big_endian_microseconds(data)), "be.pcap.gz")
    res = import_itch([be], ImportOptions())
    ivoo = next(d for d in res.days if d.instrument.symbol == "IVOO").events[0]
    assert (ivoo["qty"], ivoo["price"], ivoo["order_id"]) == (1600, 873_900, 23_508_286)
    assert ivoo["local_ts"] == 1_692_711_000_000_059_000  # capture time, microseconds
    assert res.report.rows_read == 5


# --- damaged captures: resynchronisation and checksums ----------------------------------------
MULTI = "Multiple.Packets.pcap"  # packet 1: 87-byte frame, a lone D; packet 2: 38 adds


def test_damaged_record_header_resyncs_at_the_next_packet(shared_data: Path, tmp_path: Path):
    data = bytearray((shared_data / OMI / MULTI).read_bytes())
    data[24 + 8 : 24 + 12] = (10**6).to_bytes(4, "little")  # packet 1's captured length
    res = import_itch([write(tmp_path, bytes(data), "x.pcap")], ImportOptions())
    rep = res.report
    assert rep.rows_read == 38
    assert rep.bytes_skipped == {"bytes that frame no pcap packet record (a damaged record "
                                 "header; resynchronised at the next plausible record)": 16 + 87}
    assert next(iter(rep.damaged.values())) == "x.pcap offset 24"
    clean = (shared_data / OMI / MULTI).read_bytes()
    junk = clean[:24 + 16 + 87] + b"\x00\x01\x02\x03\x04" + clean[24 + 16 + 87:]
    rep = import_itch([write(tmp_path, junk, "y.pcap")], ImportOptions()).report
    assert rep.rows_read == 39
    assert sum(rep.bytes_skipped.values()) == 5


def test_udp_checksum_mismatch_skips_the_damaged_packet(shared_data: Path, tmp_path: Path):
    data = bytearray((shared_data / OMI / MULTI).read_bytes())
    data[24 + 16 + 80] ^= 0x01  # inside packet 1's MoldUDP64 payload: its checksums hold
    res = import_itch([write(tmp_path, bytes(data), "x.pcap")], ImportOptions())
    rep = res.report
    assert rep.bytes_skipped == {
        "bytes of packets whose UDP checksum does not match (damaged payload)": 16 + 87}
    assert rep.rows_read == 38
    assert len(res.days[0].events) == 38


def test_moldudp64_block_that_frames_no_message_skips_the_rest_of_its_packet(
    shared_data: Path, tmp_path: Path
) -> None:
    # the 20230822 captures carry no valid checksums (rewritten): framing is the only check
    data = bytearray((shared_data / OMI_0822 / "AddOrderNoMPID.pcap").read_bytes())
    at = int(frame_pcap(bytes(data), "x").offsets[1]) - 2  # packet 2's block length
    data[at + 1] -= 1
    res = import_itch([write(tmp_path, bytes(data), "x.pcap")], ImportOptions())
    rep = res.report
    assert rep.rows_read == 4
    reason = ("bytes of MoldUDP64 packets from a block that is no ITCH 5.0 message (unknown "
              "type or length) to the packet's end")
    assert rep.bytes_skipped == {reason: 2 + 36}
    assert rep.damaged == {reason: f"x.pcap offset {at:,}"}


def test_capture_cut_inside_a_packet_is_damage(shared_data: Path, tmp_path: Path) -> None:
    data = (shared_data / OMI / MULTI).read_bytes()
    rep = import_itch([write(tmp_path, data[:-10], "x.pcap")], ImportOptions()).report
    assert rep.bytes_skipped == {"bytes of a packet record cut by the end of the capture":
                                 len(data) - 10 - (24 + 16 + 87)}
    assert rep.rows_read == 1
