package blob

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// StartMultipartUpload begins a multipart upload under key and never completes it, as a
// crashed writer would.
func StartMultipartUpload(ctx context.Context, s *S3, key string) error {
	_, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	return err
}

// MultipartUploads counts the incomplete multipart uploads under prefix.
func MultipartUploads(ctx context.Context, s *S3, prefix string) (int, error) {
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + prefix)})
	if err != nil {
		return 0, err
	}
	return len(out.Uploads), nil
}
