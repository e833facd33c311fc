package gitrepo

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

// Compacting the clone's packs.
//
// Merging the recent packs (recent.go) turns 128 commits into one pack, and every
// fetch brings one more (another replica's commits), so a clone that lives for weeks
// under load gathers thousands of packs. go-git looks an object up in one pack index
// after another, and decodes every index whenever the storage is opened again (after
// each fetch and merge), so every read slows down with the count. A compaction merges
// the smallest packs into one whenever there are more than compactPacks, choosing them
// so that the sizes of the packs left form a geometric progression (as git's
// repack --geometric does): a pack is rewritten about log(size) times in its life,
// not once per compaction, and the count stays near log2(clone / smallest pack).
//
// The new pack is the old packs' entries copied as they are, compressed data and
// deltas and all: nothing is inflated, and the clone takes no more room than before.
// Only a delta whose base moved (a duplicate of an object met earlier is left out) has
// its base offset written anew.
//
// It runs beside the writer like the merge of recent packs, and takes turns with it
// (recent.merging), so neither ever removes a pack the other reads. Crash safety is
// ordering: the new index, then the new pack, both synced, then the directory; only
// then are the old packs removed (each pack before its index), under mu, which
// readers of the storage hold. A crash leaves at worst objects twice, or an index
// without its pack, which git and go-git ignore.

// Variables so that tests can compact often.
var (
	compactPacks  = 32 // more packs than this, besides the recent ones, start a compaction
	compactFactor = 2  // each pack kept is at least this many times the size of all smaller ones
)

// compactHook, when set (tests), runs once the compacted pack is durable and before
// the packs it replaces are removed.
var compactHook func()

// maybeCompact starts a compaction beside the caller when packs may have arrived since
// the last one, unless a merge or compaction is under way: that one looks again before
// it ends. It never waits: fetches and the writer call it.
func (r *Repo) maybeCompact() {
	if r.opts.Dir == "" || !r.recent.compactDue.Load() {
		return
	}
	r.startBackground(nil, nil)
}

// startBackground runs a merge of the given recent packs (none: no merge) and then the
// compactions due, one goroutine at a time. Close waits for it; after Close none
// starts. TryRLock, not RLock: a caller blocked behind Close's pending Lock would be
// the writer, whose queue a Submit holding qmu may be waiting on.
func (r *Repo) startBackground(all *objectSet, packs []plumbing.Hash) bool {
	if !r.qmu.TryRLock() {
		return false
	}
	defer r.qmu.RUnlock()
	if r.closed || !r.recent.merging.CompareAndSwap(false, true) {
		return false
	}
	r.recent.merges.Add(1)
	go r.background(all, packs)
	return true
}

func (r *Repo) background(all *objectSet, packs []plumbing.Hash) {
	defer r.recent.merges.Done()
	for {
		if all != nil {
			if err := r.mergeRecent(all, packs); err != nil {
				// The small packs stay and keep answering; a later batch tries again.
				r.log.Warn("gitrepo: merge the clone's recent packs", "packs", len(packs), "err", err)
			} else {
				r.recent.compactDue.Store(true)
			}
			all = nil
		}
		if r.recent.compactDue.Swap(false) && !r.isClosing() {
			if err := r.compactOnce(); err != nil {
				// The packs stay as they were; the next pack to arrive tries again.
				r.log.Warn("gitrepo: compact the clone's packs", "err", err)
			}
		}
		r.recent.merging.Store(false)
		// A pack that arrived while this ran found merging set and left its
		// compaction to this goroutine.
		if !r.recent.compactDue.Load() || r.isClosing() || !r.recent.merging.CompareAndSwap(false, true) {
			return
		}
	}
}

func (r *Repo) isClosing() bool {
	select {
	case <-r.closing:
		return true
	default:
		return false
	}
}

// packFile is one pack of the clone, by checksum, with its size in bytes.
type packFile struct {
	sum  plumbing.Hash
	size int64
}

// compactOnce merges the packs compactionSet picks, if any.
func (r *Repo) compactOnce() error {
	dir := filepath.Join(r.opts.Dir, "objects", "pack")
	packs, err := r.settledPacks(dir)
	if err != nil {
		return err
	}
	sel := compactionSet(packs, compactPacks, compactFactor)
	if len(sel) < 2 {
		return nil
	}
	sum, err := writeCompacted(dir, sel)
	if err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if compactHook != nil {
		compactHook()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range sel {
		if p.sum != sum {
			dropPackFiles(filepath.Join(dir, "pack-"+p.sum.String()))
		}
	}
	r.st = r.diskStorage(r.opts.Dir)
	return nil
}

// dropPackFiles removes a pack, then its index and what git may have written beside it.
// The pack first: go-git fails every lookup while it lists a pack whose index is
// gone, and a pack that cannot be removed must keep its index.
func dropPackFiles(base string) {
	if err := os.Remove(base + ".pack"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return
	}
	for _, ext := range []string{".idx", ".rev", ".bitmap", ".mtimes"} {
		os.Remove(base + ext)
	}
}

// settledPacks lists the packs a compaction may merge: each with its index, none of
// the writer's recent packs (the merge of recent packs removes those, and dropObjects
// a lost attempt's), none that git was told to keep. Listed under mu, which
// keepObjects holds while it writes a pack and records it as recent.
func (r *Repo) settledPacks(dir string) ([]packFile, error) {
	r.mu.RLock()
	entries, err := os.ReadDir(dir)
	r.recent.mu.RLock()
	recent := make(map[plumbing.Hash]bool, len(r.recent.packs))
	for sum := range r.recent.packs {
		recent[sum] = true
	}
	r.recent.mu.RUnlock()
	r.mu.RUnlock()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	names := make(map[string]bool, len(entries))
	for _, e := range entries {
		names[e.Name()] = true
	}
	var packs []packFile
	for _, e := range entries {
		hex, ok := strings.CutPrefix(e.Name(), "pack-")
		if !ok {
			continue
		}
		hex, ok = strings.CutSuffix(hex, ".pack")
		if !ok || !plumbing.IsHash(hex) {
			continue
		}
		sum := plumbing.NewHash(hex)
		base := "pack-" + hex
		if recent[sum] || !names[base+".idx"] || names[base+".keep"] {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile (a lost attempt's, listed before it was recent)
		}
		packs = append(packs, packFile{sum: sum, size: info.Size()})
	}
	return packs, nil
}

// compactionSet picks the packs to merge: none while there are at most bound, else the
// smallest ones such that each pack left is at least factor times the size of all the
// packs smaller than it, the new one included; and enough that at most half the
// bound is left, should the sizes already be spread that far.
func compactionSet(packs []packFile, bound, factor int) []packFile {
	if len(packs) <= bound {
		return nil
	}
	packs = append([]packFile(nil), packs...)
	sort.Slice(packs, func(i, j int) bool { return packs[i].size < packs[j].size })
	f := int64(factor)
	// The largest packs that already grow by the factor stay...
	split := len(packs) - 1
	for split > 0 && packs[split].size >= f*packs[split-1].size {
		split--
	}
	if split > 0 {
		split++ // packs[split-1] broke the progression: it is merged
	}
	// ...unless the new pack, the sum of those below, would break it in turn.
	var total int64
	for _, p := range packs[:split] {
		total += p.size
	}
	for split < len(packs) && packs[split].size < f*total {
		total += packs[split].size
		split++
	}
	if keep := max(bound/2, 1) - 1; len(packs)-split > keep {
		split = len(packs) - keep
	}
	return packs[:split]
}

// packEntry is where an object lies in a pack, and the CRC-32 of its entry.
type packEntry struct {
	hash   plumbing.Hash
	offset int64
	crc    uint32
}

// writeCompacted writes one pack holding every object of packs (each once) and its
// index into dir, both synced, and returns the new pack's checksum. The index goes in
// first: nothing reads an index without its pack, while a pack without its index
// stops go-git's storage opened meanwhile from reading anything.
func writeCompacted(dir string, packs []packFile) (plumbing.Hash, error) {
	// The largest first: the new pack then begins with what an older clone began
	// with, and a pack read in order is read from disk in order.
	packs = append([]packFile(nil), packs...)
	sort.SliceStable(packs, func(i, j int) bool { return packs[i].size > packs[j].size })
	indexes := make([][]packEntry, len(packs))
	written := map[plumbing.Hash]int64{} // object -> its offset in the new pack
	for i, p := range packs {
		entries, err := readPackIndex(filepath.Join(dir, "pack-"+p.sum.String()+".idx"), p.sum)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		indexes[i] = entries
		for _, e := range entries {
			written[e.hash] = -1
		}
	}
	tmp, err := os.CreateTemp(dir, "pack-compact.tmp-*")
	if err != nil {
		return plumbing.ZeroHash, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	pw := &packWriter{h: sha1.New()}
	pw.w = bufio.NewWriterSize(io.MultiWriter(tmp, pw.h), 256<<10)
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(written)))
	pw.write(hdr[:])
	out := make([]packEntry, 0, len(written))
	for i, p := range packs {
		if err := pw.copyPack(filepath.Join(dir, "pack-"+p.sum.String()+".pack"), p.size, indexes[i], written, &out); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("pack %s: %w", p.sum, err)
		}
		indexes[i] = nil
	}
	if pw.err == nil {
		pw.err = pw.w.Flush()
	}
	if pw.err != nil {
		return plumbing.ZeroHash, pw.err
	}
	if len(out) != len(written) {
		return plumbing.ZeroHash, fmt.Errorf("wrote %d objects of %d", len(out), len(written))
	}
	sum := plumbing.Hash(pw.h.Sum(nil))
	if _, err := tmp.Write(sum[:]); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := tmp.Chmod(0o444); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := tmp.Sync(); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := tmp.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	base := filepath.Join(dir, "pack-"+sum.String())
	if err := writeFileAtomic(base+".idx", indexV2(out, sum)); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := os.Rename(tmp.Name(), base+".pack"); err != nil {
		os.Remove(base + ".idx")
		return plumbing.ZeroHash, err
	}
	ok = true
	return sum, nil
}

// readPackIndex reads a pack's index, its entries in pack order.
func readPackIndex(path string, sum plumbing.Hash) ([]packEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(bufio.NewReader(f)).Decode(idx); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !bytes.Equal(idx.PackfileChecksum[:], sum[:]) {
		return nil, fmt.Errorf("%s: the index is of pack %x", path, idx.PackfileChecksum)
	}
	it, err := idx.EntriesByOffset()
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []packEntry
	for {
		e, err := it.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, packEntry{hash: e.Hash, offset: int64(e.Offset), crc: e.CRC32})
	}
}

// packWriter writes the new pack, hashing it and counting its offset; the first
// error sticks.
type packWriter struct {
	w   *bufio.Writer
	h   hash.Hash
	n   int64
	err error
}

func (pw *packWriter) write(b []byte) {
	if pw.err != nil {
		return
	}
	n, err := pw.w.Write(b)
	pw.n += int64(n)
	pw.err = err
}

// copyPack copies the entries of one pack (entries in pack order) to the new pack,
// leaving out the objects written already, and appends what the index needs to out.
// Each entry's CRC is checked against its index first: a damaged pack stops the
// compaction instead of spreading into the pack that replaces it.
func (pw *packWriter) copyPack(path string, size int64, entries []packEntry, written map[plumbing.Hash]int64, out *[]packEntry) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [12]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return err
	}
	if string(hdr[:4]) != "PACK" || binary.BigEndian.Uint32(hdr[8:]) != uint32(len(entries)) {
		return errors.New("the pack does not match its index")
	}
	rd := bufio.NewReaderSize(f, 256<<10)
	pos := int64(len(hdr))
	newOff := make([]int64, len(entries)) // where each entry's object lies in the new pack
	var buf []byte
	for i, e := range entries {
		end := size - sha1.Size
		if i+1 < len(entries) {
			end = entries[i+1].offset
		}
		if e.offset != pos || end <= e.offset {
			return fmt.Errorf("entry at %d is not where the index says", e.offset)
		}
		n := int(end - e.offset)
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		raw := buf[:n]
		if _, err := io.ReadFull(rd, raw); err != nil {
			return err
		}
		pos = end
		if crc32.ChecksumIEEE(raw) != e.crc {
			return fmt.Errorf("entry at %d fails its CRC", e.offset)
		}
		if at := written[e.hash]; at >= 0 {
			newOff[i] = at // a duplicate: deltas on it use the copy written before
			continue
		}
		hdrLen, ofs, ofsLen, err := entryLayout(raw)
		if err != nil {
			return fmt.Errorf("entry at %d: %w", e.offset, err)
		}
		at := pw.n
		newOff[i], written[e.hash] = at, at
		if ofsLen == 0 {
			pw.write(raw)
			*out = append(*out, packEntry{hash: e.hash, offset: at, crc: e.crc})
			continue
		}
		// An OFS_DELTA names its base by distance back, which a duplicate left
		// out between the two, or in place of the base, changes.
		b := sort.Search(i, func(j int) bool { return entries[j].offset >= e.offset-ofs })
		if b == i || entries[b].offset != e.offset-ofs {
			return fmt.Errorf("entry at %d: delta base at %d is not an entry", e.offset, e.offset-ofs)
		}
		ofsBytes := encodeDeltaOffset(at - newOff[b])
		crc := crc32.Update(0, crc32.IEEETable, raw[:hdrLen])
		crc = crc32.Update(crc, crc32.IEEETable, ofsBytes)
		crc = crc32.Update(crc, crc32.IEEETable, raw[hdrLen+ofsLen:])
		pw.write(raw[:hdrLen])
		pw.write(ofsBytes)
		pw.write(raw[hdrLen+ofsLen:])
		*out = append(*out, packEntry{hash: e.hash, offset: at, crc: crc})
	}
	if pos != size-sha1.Size {
		return fmt.Errorf("%d bytes after the last entry", size-sha1.Size-pos)
	}
	return pw.err
}

// entryLayout reads a pack entry's header: its length and, for an OFS_DELTA, the
// distance back to its base and how many bytes name it (0 for any other entry).
func entryLayout(b []byte) (hdrLen int, ofs int64, ofsLen int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, errors.New("empty entry")
	}
	typ := plumbing.ObjectType((b[0] >> 4) & 7)
	i := 0
	for b[i]&0x80 != 0 {
		if i++; i >= len(b) || i > packEntryHeaderMax {
			return 0, 0, 0, errors.New("truncated header")
		}
	}
	hdrLen = i + 1
	if typ != plumbing.OFSDeltaObject {
		return hdrLen, 0, 0, nil
	}
	j := hdrLen
	if j >= len(b) {
		return 0, 0, 0, errors.New("truncated delta offset")
	}
	ofs = int64(b[j] & 0x7f)
	for b[j]&0x80 != 0 {
		if j++; j >= len(b) || j-hdrLen > 9 {
			return 0, 0, 0, errors.New("truncated delta offset")
		}
		ofs = (ofs+1)<<7 | int64(b[j]&0x7f)
	}
	if ofs <= 0 {
		return 0, 0, 0, errors.New("delta offset not back")
	}
	return hdrLen, ofs, j + 1 - hdrLen, nil
}

// encodeDeltaOffset is the OFS_DELTA distance as git writes it: big-endian groups of
// 7 bits, each but the last flagged, each but the last one less than its value.
func encodeDeltaOffset(ofs int64) []byte {
	var b [10]byte
	i := len(b) - 1
	b[i] = byte(ofs & 0x7f)
	for ofs >>= 7; ofs > 0; ofs >>= 7 {
		ofs--
		i--
		b[i] = 0x80 | byte(ofs&0x7f)
	}
	return b[i:]
}

// indexV2 renders the version-2 index of a pack holding entries, as idxV2 does for a
// pack in memory, from entries that hold no content.
func indexV2(entries []packEntry, sum plumbing.Hash) []byte {
	sort.Slice(entries, func(i, j int) bool { return bytes.Compare(entries[i].hash[:], entries[j].hash[:]) < 0 })
	var b bytes.Buffer
	b.Grow(8 + 256*4 + len(entries)*28 + 2*sha1.Size)
	b.Write([]byte{0xff, 't', 'O', 'c', 0, 0, 0, 2})
	var fan [256]uint32
	for _, e := range entries {
		fan[e.hash[0]]++
	}
	var acc uint32
	var w [8]byte
	for i := range fan {
		acc += fan[i]
		binary.BigEndian.PutUint32(w[:4], acc)
		b.Write(w[:4])
	}
	for _, e := range entries {
		b.Write(e.hash[:])
	}
	for _, e := range entries {
		binary.BigEndian.PutUint32(w[:4], e.crc)
		b.Write(w[:4])
	}
	var large []int64
	for _, e := range entries {
		v := uint32(e.offset)
		if e.offset >= 1<<31 {
			v = uint32(len(large)) | 1<<31
			large = append(large, e.offset)
		}
		binary.BigEndian.PutUint32(w[:4], v)
		b.Write(w[:4])
	}
	for _, l := range large {
		binary.BigEndian.PutUint64(w[:], uint64(l))
		b.Write(w[:])
	}
	b.Write(sum[:])
	s := sha1.Sum(b.Bytes())
	b.Write(s[:])
	return b.Bytes()
}
