-- lecture_timeline: per lecture per time bucket (a minute by default): class mean attention,
-- faces and students visible, emotion mix.
--
-- Definitions (docs/ATTENTION.md, docs/REPORTS.md):
-- * bucket k of a lecture holds the sampled frames with k * $bucket_s <= pts_s < (k + 1) * $bucket_s,
--   pts_s = seconds from the start of the video; $bucket_s = 60 gives minutes (minute 0 = 0-59.9 s).
-- * mean_attention = mean attention score of the students' measured faces in the bucket (each
--   student in each sampled frame counts once; unmeasured faces and absent students count not at
--   all); attention_rate = attentive / (attentive + inattentive) of the same faces.
-- * head_up_rate = share of the students whose head state was read in the bucket's frames that face
--   the front (up), pooled over its frames; head_known_share = those reads / (the lecture's students x
--   the bucket's frames): students not seen, or seen too small, are unknown, never up or not up
--   (head_up_frames in _head_up.sql).
-- * faces_per_frame = faces the detector found per sampled frame (stray detections included);
--   students_visible = distinct students seen in the bucket.
-- * share_<emotion> = share of the students' readable faces in the bucket labelled <emotion>
--   (faces too small to read an emotion from count in no share, docs/VALIDITY.md);
--   emotion_readable_share = readable faces / student faces, attention_readable_share = measured
--   faces / student faces.
-- * low_rank = 1 for the bucket of lowest mean_attention in the lecture, 2 the next, ... (ties:
--   the earlier bucket first); null for a bucket without a measured face.
-- * speech_share = share of the bucket's sampled frames taken while someone was speaking
--   (frame_speech in _speech.sql); null when the lecture's audio was not analysed.
-- Parameters: $course, $date_from, $date_to (inclusive), $video (id or prefix), $bucket_s (seconds).

with

scope as (
    select video_id, course, lecture_date
    from lectures_in($course, $date_from, $date_to, $video)
),

frame_buckets as (
    select
        video_id,
        cast(floor(pts_s / $bucket_s) as bigint) as bucket,
        count(*) as frames_sampled,
        count(*) filter (where n_faces = 0) as frames_no_faces,
        sum(n_faces) as faces
    from frames
    where video_id in (select video_id from scope)
    group by all
),

face_buckets as (
    select
        video_id,
        cast(floor(pts_s / $bucket_s) as bigint) as bucket,
        count(*) as student_faces,
        count(distinct student_id) as students_visible,
        count(attention) as faces_measured,
        count(emotion) / count(*) as emotion_readable_share,
        count(attention) / count(*) as attention_readable_share,
        avg(attention) as mean_attention,
        count(*) filter (where attentive) / nullif(count(attention), 0) as attention_rate,
        count(*) filter (where emotion = 'angry') / nullif(count(emotion), 0) as share_angry,
        count(*) filter (where emotion = 'disgust') / nullif(count(emotion), 0) as share_disgust,
        count(*) filter (where emotion = 'fear') / nullif(count(emotion), 0) as share_fear,
        count(*) filter (where emotion = 'happy') / nullif(count(emotion), 0) as share_happy,
        count(*) filter (where emotion = 'sad') / nullif(count(emotion), 0) as share_sad,
        count(*) filter (where emotion = 'surprise') / nullif(count(emotion), 0) as share_surprise,
        count(*) filter (where emotion = 'neutral') / nullif(count(emotion), 0) as share_neutral
    from faces
    where video_id in (select video_id from scope)
        and student_id is not null
    group by all
),

head_buckets as (
    select
        video_id,
        cast(floor(pts_s / $bucket_s) as bigint) as bucket,
        sum(students_up) / nullif(sum(students_known), 0) as head_up_rate,
        sum(students_known) / nullif(sum(students_present), 0) as head_known_share
    from head_up_frames($course, $date_from, $date_to, $video)
    group by all
),

speech_buckets as (
    select
        video_id,
        cast(floor(pts_s / $bucket_s) as bigint) as bucket,
        avg(speaking::int) as speech_share
    from frame_speech
    where video_id in (select video_id from scope)
    group by all
),

final as (
    select
        scope.course,
        scope.lecture_date,
        frame_buckets.video_id,
        frame_buckets.bucket,
        frame_buckets.bucket * $bucket_s as start_s,
        (frame_buckets.bucket + 1) * $bucket_s as end_s,
        frame_buckets.frames_sampled,
        frame_buckets.frames_no_faces,
        frame_buckets.faces / frame_buckets.frames_sampled as faces_per_frame,
        coalesce(face_buckets.students_visible, 0) as students_visible,
        coalesce(face_buckets.faces_measured, 0) as faces_measured,
        face_buckets.mean_attention,
        face_buckets.attention_rate,
        head_buckets.head_up_rate,
        head_buckets.head_known_share,
        face_buckets.attention_readable_share,
        face_buckets.emotion_readable_share,
        speech_buckets.speech_share,
        case when face_buckets.mean_attention is not null then
            row_number() over (
                partition by frame_buckets.video_id, face_buckets.mean_attention is null
                order by face_buckets.mean_attention, frame_buckets.bucket
            )
        end as low_rank,
        face_buckets.share_angry,
        face_buckets.share_disgust,
        face_buckets.share_fear,
        face_buckets.share_happy,
        face_buckets.share_sad,
        face_buckets.share_surprise,
        face_buckets.share_neutral
    from frame_buckets
    inner join scope on frame_buckets.video_id = scope.video_id
    left join face_buckets
        on frame_buckets.video_id = face_buckets.video_id and frame_buckets.bucket = face_buckets.bucket
    left join head_buckets
        on frame_buckets.video_id = head_buckets.video_id and frame_buckets.bucket = head_buckets.bucket
    left join speech_buckets
        on frame_buckets.video_id = speech_buckets.video_id and frame_buckets.bucket = speech_buckets.bucket
    order by scope.course, scope.lecture_date, frame_buckets.video_id, frame_buckets.bucket
)

select * from final
