//! Fragmented MP4 (ISO/IEC 14496-12, CMAF-shaped): an init segment (`ftyp` + `moov`) naming
//! the tracks, then fragments (`moof` + `mdat`), each playable on its own once the init is
//! read. Files written so are playable up to their last whole fragment however the writer
//! stopped, and the same fragments are LL-HLS parts. Boxes are built and encoded with
//! `mp4-atom`; this module only decides what goes in them.

use bytes::Bytes;
use mp4_atom::{
    Audio, Avc1, Avcc, Dinf, Dops, Dref, Encode, Ftyp, Hdlr, Mdat, Mdhd, Mdia, Mfhd, Minf, Moof,
    Moov, Mvex, Mvhd, Opus, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd, Traf, Trak,
    Trex, Trun, TrunEntry, TrunSamples, Url, Visual, Vmhd, Vp09, VpcC,
};

use super::depack::Codec;

/// `trun` sample flags: a sync sample, and one that depends on others (ISO 14496-12 §8.8.3.1).
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// What the init segment says about one track.
#[derive(Debug, Clone)]
pub struct TrackInfo {
    /// 1-based.
    pub id: u32,
    pub codec: Codec,
    /// Ticks per second of its decode times (the RTP clock rate).
    pub timescale: u32,
    pub dims: Option<(u16, u16)>,
    /// H.264 only: the sequence and picture parameter sets (NAL units with their headers).
    pub sps: Option<Bytes>,
    pub pps: Option<Bytes>,
    /// Audio only.
    pub channels: u16,
}

/// Why an init segment cannot be written yet.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("the H.264 track has no SPS/PPS yet")]
    NoParameterSets,
    #[error("encoding: {0}")]
    Encode(String),
}

fn enc<T: Encode>(atom: &T, buf: &mut Vec<u8>) -> Result<(), InitError> {
    atom.encode(buf)
        .map_err(|e| InitError::Encode(e.to_string()))
}

/// The `ftyp` and `moov` of a fragmented file with these tracks.
pub fn init_segment(tracks: &[TrackInfo]) -> Result<Vec<u8>, InitError> {
    let mut trak = Vec::new();
    for t in tracks {
        trak.push(track(t)?);
    }
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            trex: tracks
                .iter()
                .map(|t| Trex {
                    track_id: t.id,
                    default_sample_description_index: 1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        trak,
        ..Default::default()
    };
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    };
    let mut buf = Vec::new();
    enc(&ftyp, &mut buf)?;
    enc(&moov, &mut buf)?;
    Ok(buf)
}

fn track(t: &TrackInfo) -> Result<Trak, InitError> {
    let (w, h) = t.dims.unwrap_or((0, 0));
    let visual = Visual {
        data_reference_index: 1,
        width: w,
        height: h,
        ..Default::default()
    };
    let (codec, handler): (mp4_atom::Codec, &[u8; 4]) = match t.codec {
        Codec::H264 => {
            let (Some(sps), Some(pps)) = (&t.sps, &t.pps) else {
                return Err(InitError::NoParameterSets);
            };
            let avcc = Avcc::new(sps, pps).map_err(|e| InitError::Encode(e.to_string()))?;
            (
                Avc1 {
                    visual,
                    avcc,
                    ..Default::default()
                }
                .into(),
                b"vide",
            )
        }
        Codec::Vp9 => (
            Vp09 {
                visual,
                vpcc: VpcC {
                    bit_depth: 8,
                    chroma_subsampling: 1,
                    ..Default::default()
                },
                btrt: None,
                colr: None,
                pasp: None,
                spatial: None,
            }
            .into(),
            b"vide",
        ),
        Codec::Opus => (
            Opus {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: t.channels,
                    sample_size: 16,
                    sample_rate: 48000.into(),
                },
                dops: Dops {
                    output_channel_count: t.channels as u8,
                    pre_skip: 0,
                    input_sample_rate: 48000,
                    output_gain: 0,
                    channel_mapping: None,
                },
                btrt: None,
            }
            .into(),
            b"soun",
        ),
        Codec::Vp8 => {
            return Err(InitError::Encode(
                "VP8 has no MP4 mapping players accept; it is stored as WebM".into(),
            ));
        }
    };
    let video = handler == b"vide";
    Ok(Trak {
        tkhd: Tkhd {
            track_id: t.id,
            enabled: true,
            in_movie: true,
            alternate_group: if video { 0 } else { 1 },
            volume: if video { 0.into() } else { 1.into() },
            width: w.into(),
            height: h.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: t.timescale,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: handler.into(),
                name: if video { "wisp video" } else { "wisp audio" }.into(),
            },
            minf: Minf {
                vmhd: video.then(Vmhd::default),
                smhd: (!video).then(Smhd::default),
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![
                            Url {
                                location: "".into(),
                            }
                            .into(),
                        ],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec],
                    },
                    stts: Stts::default(),
                    stsc: Stsc::default(),
                    stsz: Stsz::default(),
                    stco: Some(Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

/// One sample of a fragment.
#[derive(Debug, Clone)]
pub struct FragSample {
    /// In the track's timescale.
    pub duration: u32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// One track's run in a fragment.
#[derive(Debug, Clone)]
pub struct FragTrack {
    pub id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub decode_time: u64,
    pub samples: Vec<FragSample>,
}

/// One `moof` + `mdat` holding every given track's samples (tracks without samples left out).
pub fn fragment(sequence: u32, tracks: &[FragTrack]) -> Result<Vec<u8>, InitError> {
    let tracks: Vec<&FragTrack> = tracks.iter().filter(|t| !t.samples.is_empty()).collect();
    let traf = |offsets: &[i32]| -> Vec<Traf> {
        tracks
            .iter()
            .zip(offsets)
            .map(|(t, off)| Traf {
                tfhd: Tfhd {
                    track_id: t.id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: t.decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(*off),
                    samples: TrunSamples::Explicit(
                        t.samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.data.len() as u32),
                                flags: Some(if s.keyframe { SYNC } else { NON_SYNC }),
                                cts: None,
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect()
    };
    // The data offsets depend on the moof's size, which does not depend on their values.
    let zeros = vec![0; tracks.len()];
    let mut probe = Vec::new();
    enc(
        &Moof {
            mfhd: Mfhd {
                sequence_number: sequence,
            },
            traf: traf(&zeros),
        },
        &mut probe,
    )?;
    let header = 8; // the mdat box header
    let mut offsets = Vec::with_capacity(tracks.len());
    let mut at = probe.len() + header;
    for t in &tracks {
        offsets.push(at as i32);
        at += t.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mut buf = Vec::with_capacity(at);
    enc(
        &Moof {
            mfhd: Mfhd {
                sequence_number: sequence,
            },
            traf: traf(&offsets),
        },
        &mut buf,
    )?;
    let mut data = Vec::with_capacity(at - probe.len() - header);
    for t in &tracks {
        for s in &t.samples {
            data.extend_from_slice(&s.data);
        }
    }
    enc(&Mdat { data }, &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Any, Decode, ReadFrom};

    fn tracks() -> Vec<TrackInfo> {
        vec![
            TrackInfo {
                id: 1,
                codec: Codec::H264,
                timescale: 90_000,
                dims: Some((1280, 720)),
                sps: Some(Bytes::from_static(
                    b"gd\0\x1f\xac$\x84\x01@\x16\xec\x04@\0\0\x03\0@\0\0\x0c#\xc6\x0c\x92",
                )),
                pps: Some(Bytes::from_static(&[0x68, 0xee, 0x32, 0xc8, 0xb0])),
                channels: 0,
            },
            TrackInfo {
                id: 2,
                codec: Codec::Opus,
                timescale: 48_000,
                dims: None,
                sps: None,
                pps: None,
                channels: 2,
            },
        ]
    }

    #[test]
    fn init_and_fragment_decode_back_with_offsets_into_the_mdat() {
        let init = init_segment(&tracks()).unwrap();
        let mut r = std::io::Cursor::new(&init);
        assert!(matches!(Any::read_from(&mut r).unwrap(), Any::Ftyp(_)));
        let Any::Moov(moov) = Any::read_from(&mut r).unwrap() else {
            panic!("no moov")
        };
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, 48_000);

        let frag = fragment(
            7,
            &[
                FragTrack {
                    id: 1,
                    decode_time: 9000,
                    samples: vec![FragSample {
                        duration: 3000,
                        keyframe: true,
                        data: Bytes::from_static(b"video"),
                    }],
                },
                FragTrack {
                    id: 2,
                    decode_time: 4800,
                    samples: vec![
                        FragSample {
                            duration: 960,
                            keyframe: true,
                            data: Bytes::from_static(b"a1"),
                        },
                        FragSample {
                            duration: 960,
                            keyframe: true,
                            data: Bytes::from_static(b"a2"),
                        },
                    ],
                },
            ],
        )
        .unwrap();
        let mut r = frag.as_slice();
        let moof = Moof::decode(&mut r).unwrap();
        assert_eq!(moof.mfhd.sequence_number, 7);
        let off = moof.traf[1].trun[0].data_offset.unwrap() as usize;
        assert_eq!(&frag[off..off + 4], b"a1a2");
        let off = moof.traf[0].trun[0].data_offset.unwrap() as usize;
        assert_eq!(&frag[off..off + 5], b"video");
        assert_eq!(
            moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time,
            9000
        );
    }

    #[test]
    fn h264_without_parameter_sets_waits() {
        let mut t = tracks();
        t[0].sps = None;
        assert!(matches!(init_segment(&t), Err(InitError::NoParameterSets)));
    }
}
