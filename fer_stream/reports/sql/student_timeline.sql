-- student_timeline: per student per lecture per time bucket: frames seen, mean attention,
-- attention rate. Feeds the per-student attention heatmap of the HTML page.
--
-- Definitions (docs/ATTENTION.md, docs/REPORTS.md):
-- * buckets as in lecture_timeline: bucket k holds k * $bucket_s <= pts_s < (k + 1) * $bucket_s.
-- * a bucket in which the student is not seen has no row (not visible, never inattentive);
--   mean_attention is null when the student is seen but never measured in the bucket.
-- * attention_rate = attentive / (attentive + inattentive) frames of the student in the bucket;
--   readable_share = measured frames / frames seen (face big enough for head pose, docs/VALIDITY.md).
-- Parameters: $course, $date_from, $date_to (inclusive), $video (id or prefix), $student,
-- $bucket_s (seconds), $min_visible_s (students seen for fewer seconds in a lecture are left out).

with

scope as (
    select video_id, course, lecture_date, frame_s
    from lectures_in($course, $date_from, $date_to, $video)
),

student_faces as (
    -- faces of no student (stray detections) are left out
    select
        video_id,
        student_id,
        cast(floor(pts_s / $bucket_s) as bigint) as bucket,
        attention,
        attentive
    from faces
    where video_id in (select video_id from scope)
        and student_id is not null
        and ($student is null or student_id = $student)
),

per_bucket as (
    select
        video_id,
        student_id,
        bucket,
        count(*) as frames_visible,
        avg(attention) as mean_attention,
        count(*) filter (where attentive) / nullif(count(attention), 0) as attention_rate,
        count(attention) / count(*) as readable_share
    from student_faces
    group by all
),

per_lecture as (
    -- frames the student is seen in the whole lecture, for $min_visible_s
    select video_id, student_id, sum(frames_visible) as frames_visible
    from per_bucket
    group by all
),

final as (
    select
        scope.course,
        scope.lecture_date,
        per_bucket.video_id,
        per_bucket.student_id,
        per_bucket.bucket,
        per_bucket.bucket * $bucket_s as start_s,
        per_bucket.frames_visible,
        per_bucket.mean_attention,
        per_bucket.attention_rate,
        per_bucket.readable_share
    from per_bucket
    inner join scope on per_bucket.video_id = scope.video_id
    inner join per_lecture
        on per_bucket.video_id = per_lecture.video_id and per_bucket.student_id = per_lecture.student_id
    where per_lecture.frames_visible * scope.frame_s >= $min_visible_s
    order by scope.course, scope.lecture_date, per_bucket.video_id, per_bucket.student_id, per_bucket.bucket
)

select * from final
