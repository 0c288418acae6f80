# The image built here, uploaded to S3, imported as an EBS snapshot and registered as an AMI
# with UEFI boot and TPM 2.0 (NitroTPM): what an SEV-SNP instance with a vTPM boots. The import
# is done by AWS's VM Import service, which needs a service role (the one IAM Cloister creates:
# for the import, not for nodes).

variable "name" {
  type = string
}

variable "image_file" {
  type        = string
  description = "The raw disk image (make image writes it)."
  validation {
    condition     = endswith(var.image_file, ".raw")
    error_message = "image_file: a raw disk image (.raw)."
  }
}

resource "aws_s3_bucket" "images" {
  bucket_prefix = "${var.name}-images-"
  force_destroy = true
}

resource "aws_s3_bucket_public_access_block" "images" {
  bucket                  = aws_s3_bucket.images.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_object" "image" {
  bucket = aws_s3_bucket.images.id
  key    = "${var.name}.raw"
  source = var.image_file
}

resource "aws_iam_role" "vmimport" {
  name_prefix = "cloister-vmimport-"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vmie.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "sts:ExternalId" = "vmimport" } }
    }]
  })
}

resource "aws_iam_role_policy" "vmimport" {
  name = "read-image"
  role = aws_iam_role.vmimport.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket"]
      Resource = [aws_s3_bucket.images.arn, "${aws_s3_bucket.images.arn}/*"]
      }, {
      Effect   = "Allow"
      Action   = ["ec2:ModifySnapshotAttribute", "ec2:CopySnapshot", "ec2:RegisterImage", "ec2:Describe*"]
      Resource = "*"
    }]
  })
}

resource "aws_ebs_snapshot_import" "image" {
  role_name = aws_iam_role.vmimport.name
  disk_container {
    format = "RAW"
    user_bucket {
      s3_bucket = aws_s3_bucket.images.id
      s3_key    = aws_s3_object.image.key
    }
  }
  tags = {
    Name = var.name
  }
  depends_on = [aws_iam_role_policy.vmimport]
}

resource "aws_ami" "image" {
  name                = var.name
  virtualization_type = "hvm"
  architecture        = "x86_64"
  root_device_name    = "/dev/xvda"
  ena_support         = true
  boot_mode           = "uefi"
  tpm_support         = "v2.0"
  imds_support        = "v2.0"
  ebs_block_device {
    device_name           = "/dev/xvda"
    snapshot_id           = aws_ebs_snapshot_import.image.id
    volume_type           = "gp3"
    delete_on_termination = true
  }
}

output "image_id" {
  value = aws_ami.image.id
}
