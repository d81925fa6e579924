package blob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// LeftoverSweeper is a Store that can remove what a crash in the middle of a Put leaves
// behind and List never shows: the local store's partial temporary files, S3's incomplete
// multipart uploads. The snapshot reaper calls it after its grace period.
type LeftoverSweeper interface {
	// SweepLeftovers removes leftovers under prefix started before olderThan and reports
	// how many it removed.
	SweepLeftovers(ctx context.Context, prefix string, olderThan time.Time) (int, error)
}

var (
	_ LeftoverSweeper = (*Local)(nil)
	_ LeftoverSweeper = (*S3)(nil)
)

// SweepLeftovers removes temporary files (a Put that never linked its file into place)
// under prefix last modified before olderThan.
func (l *Local) SweepLeftovers(ctx context.Context, prefix string, olderThan time.Time) (int, error) {
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		if err := ValidKey(prefix[:i]); err != nil {
			return 0, err
		}
	}
	removed := 0
	err := l.walkFiles(ctx, prefix, true, func(p string, info fs.FileInfo) error {
		if !info.ModTime().Before(olderThan) {
			return nil // perhaps still being written
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("blob: sweeping temporary files: %w", err)
	}
	return removed, nil
}

// SweepLeftovers aborts multipart uploads under prefix initiated before olderThan. Put never
// starts one, but a store shared with other tools, or a future chunked Put, may hold some;
// their parts are billed until aborted.
func (s *S3) SweepLeftovers(ctx context.Context, prefix string, olderThan time.Time) (int, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + prefix)}
	aborted := 0
	for {
		page, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return aborted, fmt.Errorf("blob: s3 list multipart uploads %s: %w", prefix, err)
		}
		for _, u := range page.Uploads {
			if !aws.ToTime(u.Initiated).Before(olderThan) {
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(s.bucket), Key: u.Key, UploadId: u.UploadId,
			})
			if err != nil && !isCode(err, "NoSuchUpload") {
				return aborted, fmt.Errorf("blob: s3 abort multipart upload %s: %w", aws.ToString(u.Key), err)
			}
			aborted++
		}
		if !aws.ToBool(page.IsTruncated) {
			return aborted, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}
