package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Options configure an S3 store. Credentials come from the SDK's default chain
// (environment, shared config, IAM role) and are never logged.
type S3Options struct {
	Endpoint       string // S3_ENDPOINT: empty for AWS, a URL for S3-compatible stores
	Region         string // S3_REGION
	Bucket         string // S3_BUCKET
	Prefix         string // S3_PREFIX: prepended to every key ("" or ending in "/")
	ForcePathStyle bool   // S3_FORCE_PATH_STYLE: most S3-compatible stores need it
	HTTPClient     *http.Client
	// Credentials overrides the default chain (tests against a local S3-compatible server).
	Credentials aws.CredentialsProvider
}

// S3 is a Store in an S3 bucket: the object under key "a/b" is s3://bucket/<prefix>a/b.
type S3 struct {
	client *s3.Client
	bucket string
	prefix string
}

var _ Store = (*S3)(nil)

// NewS3 builds the client and checks the bucket is reachable, so a misconfiguration stops
// start-up instead of failing the first upload.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.Bucket == "" {
		return nil, errors.New("blob: S3_BUCKET: must be set for STORAGE_BACKEND=s3")
	}
	if o.Prefix != "" && !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	loadOpts := []func(*config.LoadOptions) error{}
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(o.Credentials))
	}
	if o.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(o.HTTPClient))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("blob: loading AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.ForcePathStyle
		// Checksums only when we ask for them (Put of a seekable body), so that stores
		// without the newer checksum headers still work.
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	s := &S3{client: client, bucket: o.Bucket, prefix: o.Prefix}
	if err := s.Check(ctx); err != nil {
		return nil, fmt.Errorf("blob: S3_BUCKET %q is not reachable at %q: %w", o.Bucket, o.Endpoint, err)
	}
	return s, nil
}

// Check reports whether the bucket answers (for start-up and /readyz).
func (s *S3) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	return err
}

func (s *S3) key(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put streams size bytes with a known Content-Length and its Content-Type, and never overwrites (If-None-Match:
// *). A seekable body (a spooled upload) is sent with a SHA-256 checksum that the store
// verifies; a plain stream is sent unsigned so it need not be buffered.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(k),
		Body:          r,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String(contentType),
		IfNoneMatch:   aws.String("*"),
	}
	var opts []func(*s3.Options)
	if _, ok := r.(io.ReadSeeker); ok {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
	} else {
		opts = append(opts, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	}
	_, err = s.client.PutObject(ctx, in, opts...)
	if err != nil {
		if isCode(err, "PreconditionFailed", "ConditionalRequestConflict") {
			return ErrExists
		}
		return fmt.Errorf("blob: s3 put %s: %w", key, err)
	}
	return nil
}

// Get streams the object.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, Object{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) || isCode(err, "NotFound", "NoSuchKey") {
			return nil, Object{}, ErrNotFound
		}
		return nil, Object{}, fmt.Errorf("blob: s3 get %s: %w", key, err)
	}
	obj := Object{Key: key, Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified)}
	return out.Body, obj, nil
}

// Delete removes the object; S3 treats a missing key as deleted already, and so do we.
func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil && !isCode(err, "NoSuchKey", "NotFound") {
		return fmt.Errorf("blob: s3 delete %s: %w", key, err)
	}
	return nil
}

// List pages through the prefix (1,000 keys a request) and yields objects last modified
// before olderThan.
func (s *S3) List(ctx context.Context, prefix string, olderThan time.Time) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket),
			Prefix: aws.String(s.prefix + prefix),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(Object{}, fmt.Errorf("blob: s3 list %s: %w", prefix, err))
				return
			}
			for _, o := range page.Contents {
				mod := aws.ToTime(o.LastModified)
				if !olderThan.IsZero() && !mod.Before(olderThan) {
					continue
				}
				key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
				if !yield(Object{Key: key, Size: aws.ToInt64(o.Size), Modified: mod}, nil) {
					return
				}
			}
		}
	}
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}
