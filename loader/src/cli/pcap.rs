//! Reading Ethernet frames from a capture file (pcap or pcapng), for `replay`.
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng file (magic {magic:02x?})")]
    Magic { path: String, magic: Vec<u8> },
    #[error("{path}: malformed capture: {source}")]
    Format {
        path: String,
        source: pcap_file::PcapError,
    },
    #[error("{path}: link type {link:?} is not Ethernet; replay needs Ethernet frames (capture with -i <ethernet device>, not 'any')")]
    LinkType { path: String, link: DataLink },
}

/// One captured frame and whether the capture cut it short (snaplen).
pub struct Frame {
    pub data: Vec<u8>,
    pub truncated_by_capture: bool,
}

pub fn read_frames(path: &Path) -> Result<Vec<Frame>, PcapError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| PcapError::Io {
        path: p.clone(),
        source,
    })?;
    let fmt = |source| PcapError::Format {
        path: p.clone(),
        source,
    };
    let magic = bytes.get(..4).unwrap_or(&bytes).to_vec();
    let mut frames = Vec::new();
    match magic.as_slice() {
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let mut r = PcapNgReader::new(bytes.as_slice()).map_err(fmt)?;
            let mut links = Vec::new();
            while let Some(block) = r.next_block() {
                match block.map_err(fmt)? {
                    Block::InterfaceDescription(idb) => links.push(idb.linktype),
                    Block::EnhancedPacket(epb) => {
                        let link = links
                            .get(epb.interface_id as usize)
                            .copied()
                            .unwrap_or(DataLink::ETHERNET);
                        if link != DataLink::ETHERNET {
                            return Err(PcapError::LinkType { path: p, link });
                        }
                        frames.push(Frame {
                            truncated_by_capture: (epb.data.len() as u32) < epb.original_len,
                            data: epb.data.into_owned(),
                        });
                    }
                    Block::SimplePacket(spb) => {
                        let link = links.first().copied().unwrap_or(DataLink::ETHERNET);
                        if link != DataLink::ETHERNET {
                            return Err(PcapError::LinkType { path: p, link });
                        }
                        frames.push(Frame {
                            truncated_by_capture: (spb.data.len() as u32) < spb.original_len,
                            data: spb.data.into_owned(),
                        });
                    }
                    _ => {}
                }
            }
        }
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => {
            let mut r = PcapReader::new(bytes.as_slice()).map_err(fmt)?;
            let link = r.header().datalink;
            if link != DataLink::ETHERNET {
                return Err(PcapError::LinkType { path: p, link });
            }
            while let Some(pkt) = r.next_packet() {
                let pkt = pkt.map_err(fmt)?;
                frames.push(Frame {
                    truncated_by_capture: (pkt.data.len() as u32) < pkt.orig_len,
                    data: pkt.data.into_owned(),
                });
            }
        }
        _ => return Err(PcapError::Magic { path: p, magic }),
    }
    Ok(frames)
}
